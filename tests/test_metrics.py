"""The metrics behind the lm-eval task YAMLs, on hand-checked examples."""

import importlib.util

import pytest

from peftbench.config import TASKS
from peftbench.scoring import metrics


def test_squad_normalisation_and_exact_match():
    assert metrics.normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert metrics.exact_match("the eiffel tower", ["Eiffel Tower"]) == 100.0
    assert metrics.exact_match("Eiffel", ["Eiffel Tower", "Tower"]) == 0.0


def test_token_f1_takes_the_best_gold_answer():
    # pred "Leo Tolstoy" vs gold "Tolstoy": precision 1/2, recall 1 -> F1 2/3
    assert metrics.token_f1("Leo Tolstoy", ["Tolstoy"]) == pytest.approx(200 / 3)
    assert metrics.token_f1("Leo Tolstoy", ["Tolstoy", "Leo Tolstoy"]) == 100.0
    assert metrics.token_f1("Paris", ["Rome"]) == 0.0


def test_rouge_identity_and_disjoint():
    same = metrics.rouge("the cat sat on the mat", "the cat sat on the mat")
    assert same == {"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0}
    assert metrics.rouge("dogs bark", "the cat sat")["rouge1"] == 0.0
    # unigram overlap 2 of 3 predicted, 2 of 2 reference -> F 0.8
    assert metrics.rouge("the cat runs", "the cat")["rouge1"] == pytest.approx(80.0)


def test_first_line_is_what_lm_eval_keeps():
    assert metrics.first_line("  Paris.\nAnd then") == "Paris."


def _utils(task):
    spec = importlib.util.spec_from_file_location(f"utils_{task}", TASKS / task / "utils.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_task_process_results():
    qa = _utils("qa").process_results({"answers": ["Russian"]}, [" Russian\nmore"])
    assert qa == {"exact_match": 100.0, "f1": 100.0}
    tr = _utils("translation").process_results({"target": "En el principio"}, [" En el principio"])
    assert tr["chrf"] == ("En el principio", "En el principio")
    su = _utils("summarization").process_results({"target": "A cat sat."}, [" A cat sat."])
    assert su["rougeL"] == 100.0


def test_metamath_gsm8k_scores_the_final_number_as_peft():
    """peft's get_accuracy (method_comparison/MetaMathQA/utils.py), record by record."""
    score = _utils("metamath-gsm8k").process_results
    ref = {"target": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72"}
    assert score(ref, [" She sold 48 + 24 = 72 clips.\nThe answer is: 72"]) == {"acc": 100.0}
    assert score(ref, [" The answer is: 72.0."])["acc"] == 100.0  # compared as numbers
    assert score(ref, [" The answer is: $72"])["acc"] == 100.0  # " .!?$%" stripped
    assert score(ref, [" The answer is: 71\nThe answer is: 72"])["acc"] == 100.0  # the last delimiter
    assert score(ref, [" 72"])["acc"] == 0.0  # no delimiter: wrong
    assert score(ref, [" The answer is: 72\nQuestion: next"])["acc"] == 100.0  # its first line only
    assert score({"target": "#### 0.5"}, ["The answer is: 1/2"])["acc"] == 100.0  # fractions
    assert score({"target": "#### 5"}, ["The answer is: five"])["acc"] == 0.0
    with pytest.raises(ValueError, match="no final answer"):
        score({"target": "72"}, ["The answer is: 72"])


def test_corpus_chrf_through_lm_eval_aggregation():
    from lm_eval.api.metrics import chrf

    assert chrf([("En el principio", "En el principio")]) == pytest.approx(100.0)
    assert chrf([("En el principio", "xyz")]) < 10
