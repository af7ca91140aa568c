"""The eight commonsense sets' scorer (ReFT Table 1 / LLM-Adapters), one for all of them: the shared
tasks/lm_eval_commonsense.yaml names it (`!function peftbench.scoring.commonsense.process_results`)."""

from peftbench.scoring.metrics import trigger_exact_match


def process_results(doc, results):
    """pyreft's commonsense scoring: exact match of the text after "the correct answer is "."""
    return {"acc": trigger_exact_match(results[0], doc["answers"])}
