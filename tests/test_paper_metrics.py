"""The paper tasks' scoring: the E2E challenge's five metrics (peftbench/scoring/e2e_metrics.py, java for METEOR and
the PTB tokenizer) and the commonsense sets' answer extraction, each also through lm-eval's own path with
the task's lm_eval.yaml on the tiny model (beam search for E2E, as LoRA's decoding)."""

import math
import shutil

import pytest

from peftbench import config, io
from peftbench.data import build
from peftbench.scoring import e2e_metrics
from peftbench.scoring.metrics import choice_accuracy, trigger_exact_match
from peftbench.stages import evaluate

REFS = [
    ["The Vaults is a cheap pub near Café Adriatic.", "Near Café Adriatic there is a cheap pub called The Vaults."],
    ["Zizzi is an expensive coffee shop in the city centre.", "Zizzi is a coffee shop in the centre, prices are high."],
]
needs_java = pytest.mark.skipif(
    shutil.which("java") is None,
    reason="METEOR 1.5 and the PTB tokenizer run on java (apt-get install default-jre-headless)",
)


def test_bleu_and_nist_count_every_reference():
    second = [refs[1] for refs in REFS]  # each hypothesis equals its *second* reference
    assert e2e_metrics.bleu(second, REFS) == pytest.approx(100.0)
    perfect = e2e_metrics.nist(second, REFS)
    assert perfect > e2e_metrics.nist(["Zizzi is a pub.", "The Vaults is expensive."], REFS) > 0
    partial = e2e_metrics.bleu(
        ["The Vaults is a cheap pub near the river.", "Zizzi is an expensive coffee shop."], REFS
    )
    assert 0 < partial < 100


@needs_java
def test_e2e_metrics_on_a_corpus():
    hyps = ["The Vaults is a cheap pub near Café Adriatic.", "Zizzi is a coffee shop with high prices."]
    s = e2e_metrics.scores(hyps, REFS)
    assert set(s) == set(e2e_metrics.METRICS)
    assert all(math.isfinite(v) for v in s.values())
    assert 50 < s["bleu"] < 100 and 50 < s["meteor"] < 100 and 50 < s["rougeL"] < 100
    assert 0 < s["cider"] < 10 and 0 < s["nist"] < 15


def test_choice_accuracy_takes_the_first_option_label():
    choices = ["answer1", "answer2", "answer3"]
    assert choice_accuracy("the correct answer is answer2", choices, ["answer2"]) == 100.0
    assert choice_accuracy("The correct answer is Answer3, not answer2", choices, ["answer2"]) == 0.0
    assert choice_accuracy("I do not know", choices, ["answer2"]) == 0.0
    assert choice_accuracy("the correct answer is true", ["false", "true"], ["true"]) == 100.0


def test_trigger_exact_match_is_pyrefts_commonsense_scorer():
    assert trigger_exact_match("the correct answer is answer2", ["answer2"]) == 100.0
    assert trigger_exact_match("the correct answer is answer2 ", ["answer2"]) == 100.0  # stripped
    assert trigger_exact_match("answer2", ["answer2"]) == 0.0  # no trigger
    assert trigger_exact_match("the correct answer is answer2, not answer1", ["answer2"]) == 0.0  # not exact
    assert choice_accuracy("the correct answer is answer2, not answer1", ["answer1", "answer2"], ["answer2"]) == 100.0


def _test_file(tmp_path, task_name, records):
    task = config.load_task(task_name)
    rows = [build.render(r, task) for r in records]
    io.write_jsonl(tmp_path / "test.jsonl", rows)
    return task, tmp_path / "test.jsonl"


@needs_java
def test_e2e_through_lm_eval_with_beam_search(tiny, tmp_path):
    model, tok = tiny
    task, test = _test_file(
        tmp_path,
        "e2e",
        [
            {
                "id": f"t{i}",
                "mr": f"name[The Vaults], eatType[pub], area[riverside {i}]",
                "target": refs[0],
                "answers": refs,
            }
            for i, refs in enumerate(REFS)
        ],
    )
    results, samples = evaluate.run(model, tok, task["dir"], test, batch_size=2)
    scores = evaluate.scores(results, "e2e")
    assert set(scores) == set(e2e_metrics.METRICS) and all(math.isfinite(v) for v in scores.values())
    assert results["configs"]["peftbench_e2e"]["generation_kwargs"]["num_beams"] == 10
    assert len(samples["peftbench_e2e"]) == 2


def test_commonsense_through_lm_eval(tiny, tmp_path):
    model, tok = tiny
    task, test = _test_file(
        tmp_path,
        "arc-easy",
        [
            {
                "id": "q1",
                "instruction": "Please choose the correct answer to the question: Which is a star?\n\n"
                "Answer1: the Moon\n\nAnswer2: the Sun\n\nAnswer format: answer1/answer2",
                "choices": ["answer1", "answer2"],
                "target": "the correct answer is answer2",
                "answers": ["answer2"],
            }
        ],
    )
    results, samples = evaluate.run(model, tok, task["dir"], test, batch_size=1)
    # what the tiny model generated, scored here by hand: pyreft's rule, the text after the trigger is the label
    output = samples["peftbench_arc-easy"][0]["filtered_resps"][0]
    after = output.split("the correct answer is ", 1)[1].strip() if "the correct answer is " in output else None
    assert evaluate.scores(results, "arc-easy")["acc"] == (100.0 if after == "answer2" else 0.0)
