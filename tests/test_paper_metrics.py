"""The paper tasks' scoring: the E2E challenge's five metrics (peftbench/scoring/e2e_metrics.py, java for METEOR and
the PTB tokenizer) and the commonsense sets' answer extraction, each also through lm-eval's own path with
the task's lm_eval.yaml on the tiny model (beam search for E2E, as LoRA's decoding)."""

import math
import shutil

import numpy as np
import pytest

from peftbench import config, io
from peftbench.data import build
from peftbench.scoring import e2e_metrics, nist
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


# A small corpus (multi-reference, mixed case, punctuation, a hypothesis shorter than 5 tokens) and what the
# E2E challenge's own scorer gives on it: tuetschek/e2e-metrics metrics/pymteval.py (commit 1b9c4d8),
# NISTScore / BLEUScore fed sentence by sentence as measure_scores.py -p does (run with python-future's
# old_div shimmed), on all four sentences, on the resample drawing them [2, 0, 1, 3] times, and without the first.
NIST_HYPS = [
    "The Vaults is a cheap pub near Café Adriatic.",
    "Zizzi is a coffee shop with high prices in the city centre.",
    "Green Man: a pub.",
    "Near the Rice Boat, Loch Fyne serves French food; it's rated 5 out of 5.",
]
NIST_REFS = [
    ["The Vaults is a cheap pub near Café Adriatic.", "Near Café Adriatic there is a cheap pub called The Vaults."],
    [
        "Zizzi is an expensive coffee shop in the city centre.",
        "Zizzi is a coffee shop in the centre, prices are high.",
        "In the City Centre, Zizzi is a high-priced coffee shop.",
    ],
    ["The Green Man is a pub by the riverside, near All Bar One."],
    [
        "Loch Fyne is a French restaurant near The Rice Boat with a customer rating of 5 out of 5.",
        "Loch Fyne, near The Rice Boat, serves French food and is rated 5 out of 5 by customers.",
        "French food is served at Loch Fyne near the Rice Boat; customers rate it 5 out of 5.",
        "Rated 5 out of 5, Loch Fyne is a French place near The Rice Boat.",
    ],
]
PYMTEVAL = {  # counts of each sentence -> (NIST, BLEU as a fraction)
    (1, 1, 1, 1): (5.378752871073534, 0.5552843225714518),
    (2, 0, 1, 3): (5.309113511405265, 0.6382713503325864),
    (0, 1, 1, 1): (4.8138732777831015, 0.4491935682510349),
}


def _repeat(xs, counts):
    return [x for x, c in zip(xs, counts) for _ in range(c)]


def test_nist_by_hand():
    """A hypothesis equal to its one reference "a b": unigram info log2(2/1) = 1 each, the bigram's
    log2(1/1) = 0, no longer n-grams: NIST 2/2 = 1. Against "a b c": unigram info log2 3 each, and the length
    ratio 2/3 gives the penalty exp(-beta log²(2/3)) = 1/2 exactly (mteval's beta is set so): log2(3) / 2."""
    assert nist.corpus_nist(["a b"], [["a b"]]) == pytest.approx(1.0, abs=1e-12)
    assert nist.corpus_nist(["a b"], [["a b c"]]) == pytest.approx(math.log2(3) / 2, abs=1e-12)
    assert nist.NistStatistics(["a b"], [["a b c"]]).full() == pytest.approx(math.log2(3) / 2, abs=1e-12)


@pytest.mark.parametrize("counts", sorted(PYMTEVAL))
def test_nist_and_bleu_are_the_e2e_challenges(counts):
    """NIST is pymteval's (measure_scores.py -p), to floating precision, directly and from sufficient
    statistics; BLEU (sacrebleu, 13a, lower-cased) equals pymteval's too. nltk's NIST is not it."""
    want_nist, want_bleu = PYMTEVAL[counts]
    hyps, refs = _repeat(NIST_HYPS, counts), _repeat(NIST_REFS, counts)
    assert nist.corpus_nist(hyps, refs) == pytest.approx(want_nist, rel=1e-12)
    assert e2e_metrics.nist(hyps, refs) == pytest.approx(want_nist, rel=1e-12)
    assert nist.NistStatistics(NIST_HYPS, NIST_REFS).score(np.array([counts]))[0] == pytest.approx(want_nist, rel=1e-12)
    assert e2e_metrics.bleu(hyps, refs) == pytest.approx(100 * want_bleu, rel=1e-12)
    from nltk.translate.nist_score import corpus_nist as nltk_nist

    other = nltk_nist([[nist.tokenize(r) for r in rs] for rs in refs], [nist.tokenize(h) for h in hyps], n=5)
    assert abs(other - want_nist) > 0.1


def test_nist_statistics_equal_the_direct_score_on_any_resample():
    """The sufficient-statistics NIST of a resample is the direct corpus NIST of the resampled corpus (a
    sentence drawn twice listed twice): the identity, random resamples, and the jackknife's leave-one-outs."""
    rng = np.random.default_rng(0)
    hyps = [NIST_HYPS[i % 4] if i % 3 else NIST_HYPS[(i + 1) % 4].lower() for i in range(12)]
    refs = [NIST_REFS[i % 4] for i in range(12)]
    st = nist.NistStatistics(hyps, refs)
    assert st.full() == pytest.approx(nist.corpus_nist(hyps, refs), rel=1e-12)
    counts = np.vstack([np.ones(12, int), rng.multinomial(12, np.ones(12) / 12, size=5), 1 - np.eye(12, dtype=int)])
    for c, got in zip(counts, st.score(counts)):
        assert got == pytest.approx(nist.corpus_nist(_repeat(hyps, c), _repeat(refs, c)), rel=1e-12)


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
