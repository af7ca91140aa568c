from peftbench.scoring.metrics import first_line, rouge


def process_results(doc, results):
    return rouge(first_line(results[0]), doc["target"])
