from peftbench.scoring.e2e_metrics import METRICS, aggregate
from peftbench.scoring.metrics import first_line


def process_results(doc, results):
    item = (first_line(results[0]), tuple(doc["answers"]))  # (hypothesis, every reference of the MR)
    return {name: item for name in METRICS}


bleu, nist, meteor, rougeL, cider = (aggregate(name) for name in METRICS)
