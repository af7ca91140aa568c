from peftbench.scoring.metrics import exact_match, first_line, token_f1


def process_results(doc, results):
    pred = first_line(results[0])
    return {"exact_match": exact_match(pred, doc["answers"]), "f1": token_f1(pred, doc["answers"])}
