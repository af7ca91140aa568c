"""Per-example metrics the lm-eval task YAMLs call through `process_results`.

ROUGE comes from Google's `rouge_score` (lm-eval's `metric: rouge` would fetch `evaluate` scripts
from the hub). SQuAD exact match / token F1 are the official SQuAD v1.1 evaluation script's
definitions (Rajpurkar et al. 2016), a dozen lines, written here because the packaged versions
(`evaluate.load("squad")`) need the hub."""

import collections
import functools
import re
import string


@functools.cache
def _rouge_scorer():
    """Built on first use: rouge_score imports nltk (seconds), which only the ROUGE tasks need."""
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


def rouge(prediction, reference):
    """ROUGE-1/2/L F-measure in percent."""
    scores = _rouge_scorer().score(reference, prediction)
    return {k: 100.0 * v.fmeasure for k, v in scores.items()}


def normalize_answer(s):
    """Lower case, strip punctuation, articles and extra whitespace (SQuAD v1.1)."""
    s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def exact_match(prediction, answers):
    return 100.0 * max(float(normalize_answer(prediction) == normalize_answer(a)) for a in answers)


def _f1(prediction, answer):
    pred, gold = normalize_answer(prediction).split(), normalize_answer(answer).split()
    common = collections.Counter(pred) & collections.Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction, answers):
    return 100.0 * max(_f1(prediction, a) for a in answers)


def first_line(text):
    """The generated answer: lm-eval stops at the first newline; strip what is left around it."""
    return text.strip().split("\n")[0].strip()


def choice_accuracy(prediction, choices, answers):
    """Commonsense sets in LLM-Adapters' format (ReFT Sec. 4.2): the first option label that occurs in the
    generation ("the correct answer is answer2") is the prediction; 100 if it is the gold label, else 0."""
    found = re.findall("|".join(sorted(map(re.escape, choices), key=len, reverse=True)), prediction.lower())
    return 100.0 * float(bool(found) and found[0] in answers)


def trigger_exact_match(prediction, answers, trigger="the correct answer is "):
    """pyreft's commonsense scorer (examples/loreft/compute_metrics.py, extract_output and
    `generation.strip() == answer.strip()`): the text after the trigger, stripped, is exactly the gold label;
    a generation without the trigger scores 0. 100 or 0."""
    start = prediction.find(trigger)
    generation = prediction[start + len(trigger) :].strip() if start >= 0 else ""
    return 100.0 * float(any(generation == a.strip() for a in answers))
