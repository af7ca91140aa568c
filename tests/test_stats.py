"""The statistics behind every interval, paired comparison and claim verdict (peftbench.stats), on
synthetic per-example scores whose truth is known, and sacrebleu's corpus metrics on real text."""

import numpy as np
import pytest
import sacrebleu

from peftbench import config, io
from peftbench.stats import bootstrap, claims, scores, task

REFS = [
    "the cat sat on the mat",
    "a quick brown fox jumps",
    "it is raining in the north today",
    "we went to the market",
    "the children play in the garden",
    "he reads a book every night",
    "the river runs to the sea",
    "she sings in the morning",
]
HYPS = [
    "the cat sat on a mat",
    "quick brown fox jumped",
    "it rains in the north",
    "we go to market",
    "children play in a garden",
    "he read a book at night",
    "a river runs into the sea",
    "she sings at dawn",
]


def test_counts_are_resamples_with_replacement_and_deterministic_under_the_seed():
    c = bootstrap.counts(7, resamples=500, seed=3)
    assert c.shape == (500, 7) and (c.sum(1) == 7).all() and (c >= 0).all()
    assert (c == bootstrap.counts(7, resamples=500, seed=3)).all()
    assert (c != bootstrap.counts(7, resamples=500, seed=4)).any()


@pytest.mark.parametrize("name, corpus", [("bleu", sacrebleu.corpus_bleu), ("chrf", sacrebleu.corpus_chrf)])
def test_corpus_metric_bootstrap_is_sacrebleu_on_the_full_sample_and_on_each_resample(name, corpus):
    from lm_eval.api.metrics import bleu, chrf

    items = list(zip(REFS, HYPS))
    stat = scores.statistic(name, [list(i) for i in items])  # samples.jsonl stores pairs as lists
    assert stat.full() == pytest.approx(corpus(HYPS, [REFS]).score, abs=1e-9)
    assert stat.full() == pytest.approx({"bleu": bleu, "chrf": chrf}[name](items), abs=1e-9)  # lm-eval's own
    c = bootstrap.counts(len(items), resamples=5, seed=1)
    for row, got in zip(c, stat.resampled(c)):
        drawn = np.repeat(np.arange(len(items)), row)
        assert got == pytest.approx(corpus([HYPS[i] for i in drawn], [[REFS[i] for i in drawn]]).score, abs=1e-9)


def test_generic_aggregation_is_recomputed_on_each_resample():
    stat = scores.statistic(lambda items: float(np.median([x for x, _ in items])), [[v, "r"] for v in [1, 2, 3, 10]])
    c = np.array([[4, 0, 0, 0], [0, 0, 2, 2]])
    assert stat.full() == 2.5 and stat.resampled(c).tolist() == [1.0, 6.5]


def synthetic_analysis(tmp_path, n=200, effects=None, noise=15.0, seeds=(0,)):
    """Per-example F1-like scores on n shared test examples: each method's = the example's difficulty +
    its effect + its own noise (so differences are paired through the shared difficulty)."""
    effects = effects or {"full": 0.0, "better": 10.0, "same": 0.0, "worse": -10.0}
    rng = np.random.default_rng(0)
    difficulty = rng.uniform(20, 80, n)
    runs = {}
    for m, effect in effects.items():
        for s in seeds:
            values = np.clip(difficulty + effect + rng.normal(0, noise, n), 0, 100)
            d = tmp_path / m / f"seed{s}"
            io.write_jsonl(
                d / "samples.jsonl",
                [
                    {"doc_id": i, "target": "", "filtered_resps": [""], "metrics": {"f1": float(v), "exact_match": 0.0}}
                    for i, v in enumerate(values)
                ],
            )
            runs[(m, s)] = d
    return task.analyse("qa", config.load_task("qa")["dir"], "f1", runs)


CLAIM = {"id": "x", "claim": "", "source": "", "kind": "better", "than": "full", "margin": 0}


def test_better_same_worse_give_reproduced_inconclusive_contradicted(tmp_path):
    a = synthetic_analysis(tmp_path)
    verdict = {
        m: claims.evaluate([{**CLAIM, "method": m}], {"qa": a}, summary=None)[0].verdict.split(" (")[0]
        for m in ("better", "same", "worse")
    }
    assert verdict == {"better": claims.REPRODUCED, "same": claims.INCONCLUSIVE, "worse": claims.CONTRADICTED}
    assert a.difference("better", "full").verdict() == "better" and a.difference("worse", "full").verdict() == "worse"


def test_non_inferiority_at_a_margin(tmp_path):
    a = synthetic_analysis(tmp_path, effects={"full": 0.0, "close": -1.0, "far": -25.0})
    check = lambda m: claims.evaluate([{**CLAIM, "kind": "not_worse", "method": m, "margin": 8}], {"qa": a}, None)[0]
    assert check("close").verdict == claims.REPRODUCED and check("far").verdict == claims.CONTRADICTED


def test_a_claim_whose_method_did_not_run_says_so(tmp_path):
    a = synthetic_analysis(tmp_path)
    c = claims.evaluate([{**CLAIM, "method": "scratch"}], {"qa": a}, None)[0]
    assert c.verdict == "not run: no scored run of scratch on qa"


def test_intervals_shrink_as_the_test_split_grows(tmp_path):
    small = synthetic_analysis(tmp_path / "s", n=50).score("full")
    large = synthetic_analysis(tmp_path / "l", n=800).score("full")
    assert large.high - large.low < 0.5 * (small.high - small.low)
    assert small.low < small.value < small.high


def test_paired_interval_is_tighter_than_the_two_separate_ones(tmp_path):
    a = synthetic_analysis(tmp_path)
    d, s1, s2 = a.difference("better", "full"), a.score("better"), a.score("full")
    assert d.high - d.low < 0.8 * np.hypot(s1.high - s1.low, s2.high - s2.low)
    assert a.detectable("full") == pytest.approx(
        np.median([a.difference(m, "full").detectable for m in ("better", "same", "worse")])
    )


def test_results_are_deterministic_under_the_seed(tmp_path):
    one, two = synthetic_analysis(tmp_path / "a"), synthetic_analysis(tmp_path / "b")
    assert one.score("better") == two.score("better")


def test_several_seeds_give_the_seed_spread(tmp_path):
    a = synthetic_analysis(tmp_path, seeds=(0, 1, 2))
    s = a.by_metric["f1"].seeds("full")
    assert s.n == 3 and s.std > 0 and s.low < s.mean < s.high
    assert a.score("full").value == pytest.approx(s.mean)


def test_a_run_without_per_example_scores_is_left_out_with_a_note(tmp_path):
    d = tmp_path / "old"
    io.write_jsonl(d / "samples.jsonl", [{"doc_id": 0, "target": "x", "filtered_resps": ["y"]}])
    a = task.analyse("qa", config.load_task("qa")["dir"], "f1", {("full", 0): d})
    assert not a.has("full") and "no per-example scores" in a.notes[0]


def test_bad_claims_file_names_the_claim_and_field(tmp_path):
    bad = tmp_path / "claims.yaml"
    bad.write_text("claims:\n  - {id: c1, claim: x, source: y, kind: better, method: lora}\n")
    with pytest.raises(ValueError, match=r"claims.yaml: claim c1: field 'than' is required"):
        claims.load(bad)
    bad.write_text("claims:\n  - {id: c1, claim: x, source: y, kind: bigger}\n")
    with pytest.raises(ValueError, match=r"claim c1: field 'kind'"):
        claims.load(bad)
    assert len(claims.load()) >= 8  # the shipped file is valid
