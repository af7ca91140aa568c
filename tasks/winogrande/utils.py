from peftbench.scoring.metrics import trigger_exact_match


def process_results(doc, results):
    """pyreft's commonsense scoring: exact match of the text after "the correct answer is "."""
    return {"acc": trigger_exact_match(results[0], doc["answers"])}
