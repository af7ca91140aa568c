from peftbench.metrics import choice_accuracy, first_line


def process_results(doc, results):
    return {"acc": choice_accuracy(first_line(results[0]), doc["choices"], doc["answers"])}
