from peftbench.scoring.metrics import first_line


def process_results(doc, results):
    pair = (doc["target"], first_line(results[0]))  # (reference, hypothesis), as lm-eval's bleu/chrf expect
    return {"chrf": pair, "bleu": pair}
