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


NAMES = ["The Vaults", "Zizzi", "The Eagle", "Alimentum", "Green Man", "The Punter", "Loch Fyne", "Cotto", "Aromi"]
FOODS = ["Italian", "French", "Chinese", "Indian", "English", "Japanese", "fast food"]
TYPES, AREAS = ["pub", "coffee shop", "restaurant"], ["riverside", "city centre"]
PRICES = ["cheap", "moderately priced", "expensive", "high priced", "less than £20"]
NEAR = ["Café Adriatic", "Burger King", "the Rice Boat", "Raja Indian Cuisine", "Express by Holiday Inn"]
TEMPLATES = [
    "{name} is a {price} {type} near {near} in the {area}.",
    "Near {near} in the {area} there is a {price} {type} called {name}.",
    "{name} serves {food} food at {price} prices. It is a {type} in the {area}.",
    "In the {area}, near {near}, is {name}, a {type} serving {food} food.",
    "{name}, a {food} {type}, is {price} and located near {near}.",
    "There is a {type} called {name} which serves {food} food, it is {price}.",
    "For {price} {food} food, try {name}, a {type} in the {area} near {near}.",
]


def synthetic_e2e(n, seed=0):
    """n E2E-like test records: an MR's attributes, 2 to 12 references (the test set has ~7.5 on average)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        mr = {
            k: str(rng.choice(v))
            for k, v in dict(name=NAMES, food=FOODS, type=TYPES, area=AREAS, price=PRICES, near=NEAR).items()
        }
        refs = [TEMPLATES[j].format(**mr) for j in rng.integers(0, len(TEMPLATES), rng.integers(2, 13))]
        out.append((mr, [r.replace(" is ", " is really ", 1) if rng.random() < 0.3 else r for r in refs]))
    return out


def synthetic_outputs(records, quality, seed):
    """One system's outputs: a template filled in, damaged (words dropped or replaced) with probability
    1 - quality; every 50th output empty, and some whole references, as real outputs have."""
    rng = np.random.default_rng(seed)
    out = []
    for i, (mr, refs) in enumerate(records):
        words = TEMPLATES[rng.integers(0, len(TEMPLATES))].format(**mr).split()
        if rng.random() > quality:
            for _ in range(rng.integers(1, 4)):
                j = rng.integers(0, len(words))
                if rng.random() < 0.5 and len(words) > 3:
                    del words[j]
                else:
                    words[j] = str(rng.choice(["nice", "good", "place", "food", "the"]))
        out.append("" if i % 50 == 49 else refs[0] if i % 17 == 0 else " ".join(words))
    return out


def _libraries(hyps, refs):
    """The five metrics of a corpus straight from the libraries (the E2E challenge's code paths)."""
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    h, r = e2e_metrics.ptb_tokenize(hyps, refs)
    gts, res = dict(enumerate(r)), {i: [x] for i, x in enumerate(h)}
    return {
        "bleu": e2e_metrics.bleu(hyps, refs),
        "nist": nist.corpus_nist(hyps, refs),
        "meteor": 100 * e2e_metrics._meteor().meteor.compute_score(gts, res)[0],  # the jar's own corpus score
        "rougeL": 100 * Rouge().compute_score(gts, res)[0],
        "cider": Cider().compute_score(gts, res)[0],
    }


@needs_java
def test_e2e_resamples_equal_the_libraries_on_the_resampled_corpus():
    """Every metric of a resample from sufficient statistics equals the libraries' score of the resampled
    corpus (items drawn twice listed twice), to floating precision: the identity (the full sample), a
    bootstrap resample, and a jackknife leave-one-out."""
    records = synthetic_e2e(40)
    refs, hyps = [r for _, r in records], synthetic_outputs(records, 0.5, 1)
    corpus = e2e_metrics.Corpus(hyps, refs)
    rng = np.random.default_rng(3)
    rows = [np.ones(40, int), np.bincount(rng.integers(0, 40, 40), minlength=40), 1 - np.eye(40, dtype=int)[7]]
    got = corpus.resampled(np.vstack(rows))
    for b, c in enumerate(rows):
        want = _libraries(_repeat(hyps, c), _repeat(refs, c))
        for m in e2e_metrics.METRICS:
            assert got[m][b] == pytest.approx(want[m], rel=1e-9, abs=1e-12), (m, b)
    assert corpus.full() == pytest.approx({m: got[m][0] for m in e2e_metrics.METRICS}, rel=1e-12)


# LoRA Table 3's GPT-2 M profile (config/paper-lora-e2e.yaml): 7 methods, LoRA and Adapter-H with 3 seeds
E2E_RUNS = {
    ("full", 0): 0.7,
    ("adapter-l-370k", 0): 0.5,
    ("adapter-l-11m", 0): 0.6,
    ("shared-layers", 0): 0.55,
    ("prefix", 0): 0.5,
    **{("lora", s): 0.7 for s in range(3)},
    **{("adapter-h", s): 0.65 for s in range(3)},
}


@needs_java
def test_e2e_report_statistics_at_the_profiles_size_take_minutes(tmp_path):
    """The report's statistics of the E2E profile at its real size (630 test MRs, 11 runs) finish in minutes:
    every metric of a resample is scored at once, from sufficient statistics (it took ~45 s per scoring, 2,000
    resamples x 5 metrics per run, before). The intervals come out for every metric."""
    import time

    from peftbench.stats import task as task_stats

    records = synthetic_e2e(630)
    runs = {}
    for k, ((method, seed), quality) in enumerate(E2E_RUNS.items()):
        outputs = synthetic_outputs(records, quality, 100 + k)
        d = tmp_path / method / f"seed{seed}"
        io.write_jsonl(
            d / "samples.jsonl",
            [
                {"doc_id": i, "metrics": {m: [out, refs] for m in e2e_metrics.METRICS}}
                for i, (out, (_, refs)) in enumerate(zip(outputs, records))
            ],
        )
        runs[(method, seed)] = d
    start = time.perf_counter()
    analysis = task_stats.analyse("e2e", config.load_task("e2e")["dir"], "bleu", runs)
    frame = analysis.frame()
    took = time.perf_counter() - start
    print(f"E2E statistics, 630 MRs x {len(runs)} runs: {took:.0f} s")
    assert analysis.n == 630 and not analysis.notes
    assert set(frame["metric"]) == set(e2e_metrics.METRICS) and len(frame) == 5 * 7
    assert frame[["score", "ci_low", "ci_high"]].notna().all().all()
    assert frame.loc[frame["method"] != "full", "diff_vs_full_low"].notna().all()
    assert (frame["ci_low"] <= frame["score"]).all() and (frame["score"] <= frame["ci_high"]).all()
    assert took < 240, f"{took:.0f} s"


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
