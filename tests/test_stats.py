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


def test_a_generic_aggregation_is_bounded_and_its_interval_says_so():
    """A corpus metric rescored from its texts gets the first 200 of the shared resamples and a jackknife of
    200 groups (so 401 scorings per run, not 2,000 + n + 1), and the interval and the report's cell name the
    count; a small test set keeps its leave-one-out jackknife."""
    from peftbench.report.tables import fmt_flags

    calls = []

    def median(items):
        calls.append(len(items))
        return float(np.median([x for x, _ in items]))

    values = np.random.default_rng(0).normal(50, 10, 500)
    stat = scores.statistic(median, [[v, "r"] for v in values])
    ts = bootstrap.TaskStats({"m": [stat]}, 500, seed_independent=["m"])
    assert (ts.counts == bootstrap.counts(500)[: scores.Aggregation.MAX_RESAMPLES]).all()
    e = ts.score("m")
    assert e.interval == "BCa, 200 resamples" and e.low < e.value < e.high and fmt_flags(e) == " 200 resamples"
    assert len(calls) == 1 + 200 + 200 and all(n in (497, 498, 500) for n in calls[-200:])
    small = scores.statistic(median, [[v, "r"] for v in [1, 2, 3, 10]])
    assert small.jackknife().tolist() == [3.0, 3.0, 2.0, 2.0]


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


# ---- seeds: variance components (issue 31) ---------------------------------------------------------
def seed_runs(per_seed_values):
    """{method: [scores.Mean per seed]} from arrays of per-example values."""
    return {m: [scores.Mean(v) for v in runs] for m, runs in per_seed_values.items()}


def test_interval_equals_the_test_only_one_when_the_seeds_agree_exactly():
    v = np.random.default_rng(1).uniform(0, 100, 64)
    one = bootstrap.TaskStats(seed_runs({"a": [v]}), 64, seed_independent=["a"]).score("a")
    three = bootstrap.TaskStats(seed_runs({"a": [v, v, v]}), 64).score("a")
    assert (three.low, three.high) == pytest.approx((one.low, one.high), abs=1e-12)
    assert (three.low, three.high) == pytest.approx(bootstrap.percentile_interval(bootstrap.counts(64) @ v / 64))
    assert three.se_seed == 0 and three.seed_share == 0 and three.df == pytest.approx(63) and not three.provisional


def test_interval_widens_when_the_seeds_disagree_and_says_how_much_comes_from_seeds():
    v = np.random.default_rng(1).uniform(0, 100, 64)
    width = {}
    for spread in (0.0, 1.0, 4.0):
        e = bootstrap.TaskStats(seed_runs({"a": [v - spread, v, v + spread]}), 64).score("a")
        width[spread] = e.high - e.low
        assert e.se_seed == pytest.approx(spread / np.sqrt(3))  # s = spread, over S = 3 seeds
        assert e.se**2 == pytest.approx(e.se_test**2 + e.se_seed**2)
    assert width[0.0] < width[1.0] < width[4.0]
    assert 0 < bootstrap.TaskStats(seed_runs({"a": [v - 4, v, v + 4]}), 64).score("a").seed_share < 1


def test_two_stage_interval_covers_95_percent_against_the_closed_form():
    """1,000 simulated studies, each n = 64 examples x S = 3 seeds: score = mu + example effect (sd 8) +
    seed effect (sd 1.2) + interaction (sd 2). The closed-form variance of the seed mean is
    8²/n + 1.2²/S + 2²/(n S); our SE² must match it on average, and the interval must cover mu 95% ± 2
    points. The test-only (seed-blind) interval, on the same studies, does not (it under-covers)."""
    rng = np.random.default_rng(2024)
    n, S, mu, sd_ex, sd_seed, sd_int = 64, 3, 50.0, 8.0, 1.2, 2.0
    closed = sd_ex**2 / n + sd_seed**2 / S + sd_int**2 / (n * S)
    hits, blind, se2 = 0, 0, []
    for study in range(1000):
        ex, seeds = rng.normal(0, sd_ex, n), rng.normal(0, sd_seed, S)
        runs = [mu + ex + b + rng.normal(0, sd_int, n) for b in seeds]
        ts = bootstrap.TaskStats(seed_runs({"m": runs}), n, resamples=400, seed=study)
        e = ts.score("m")
        hits += e.low <= mu <= e.high
        lo, hi = bootstrap.percentile_interval(ts.replicates["m"])
        blind += lo <= mu <= hi
        se2.append(e.se**2)
    assert np.mean(se2) == pytest.approx(closed, rel=0.1)
    assert abs(hits / 10 - 95) <= 2, hits / 10
    assert blind / 10 < 91, blind / 10  # the seed-blind interval misses the seeds' share


def test_a_trained_method_with_one_seed_is_provisional_and_zero_shot_is_not():
    v = np.random.default_rng(1).uniform(0, 100, 64)
    ts = bootstrap.TaskStats(seed_runs({"lora": [v + 1], "zero-shot": [v]}), 64, seed_independent=["zero-shot"])
    assert ts.score("lora").provisional and ts.difference("lora", "zero-shot").provisional
    assert not ts.score("zero-shot").provisional and ts.score("zero-shot").seeds == 0
    # a tuned arm inherits its method's seed independence
    ts = bootstrap.TaskStats(
        seed_runs({"zero-shot": [v], "zero-shot (tuned)": [v]}),
        64,
        seed_independent=["zero-shot"],
        group=lambda m: m.removesuffix(" (tuned)"),
    )
    assert not ts.difference("zero-shot (tuned)", "zero-shot").provisional


def test_variants_sharing_seeds_are_paired_over_seeds():
    """A tuned arm identical to its paper run, seed by seed: the seed part of tuned - paper is exactly 0."""
    v = np.random.default_rng(3).uniform(0, 100, 64)
    runs = [v + shift for shift in (-5, 0, 5)]
    paired = bootstrap.TaskStats(
        seed_runs({"lora": runs, "lora (tuned)": runs}), 64, group=lambda m: m.removesuffix(" (tuned)")
    )
    d = paired.difference("lora (tuned)", "lora")
    assert d.value == 0 and d.se_seed == 0 and d.low == d.high == 0
    unpaired = bootstrap.TaskStats(seed_runs({"lora": runs, "other": runs}), 64).difference("other", "lora")
    assert unpaired.se_seed == pytest.approx(np.sqrt(2 * 25 / 3))  # independent methods: s²/S each


def test_leave_one_seed_out_marks_a_verdict_one_seed_carries_as_fragile():
    rng = np.random.default_rng(4)
    ref = rng.uniform(20, 80, 64)
    decide = lambda e: e.verdict()
    for offsets, fragile in [((2.0, 2.1, 2.2, 2.0, 6.0), 4), ((5.0, 5.2, 4.9, 5.1, 5.0), None)]:
        runs = {"ref": [ref] * 5, "m": [ref + o + rng.normal(0, 0.5, 64) for o in offsets]}
        ts = bootstrap.TaskStats(seed_runs(runs), 64, seed_ids={"ref": [0, 1, 2, 3, 4], "m": [0, 1, 2, 3, 4]})
        assert ts.difference("m", "ref").verdict() == "better"
        assert ts.fragile({"m": 1, "ref": -1}, decide) == fragile


def test_zero_of_n_gets_the_exact_clopper_pearson_bound():
    from scipy.stats import beta

    ts = bootstrap.TaskStats(
        seed_runs({"em": [np.zeros(64)], "all": [np.ones(64)]}), 64, seed_independent=["em", "all"]
    )
    e = ts.score("em")
    assert e.low == 0 and e.high == pytest.approx(beta.ppf(0.975, 1, 64)) and e.high > 0.05
    assert ts.score("all").low == pytest.approx(beta.ppf(0.025, 64, 1)) and ts.score("all").high == 1


def test_corpus_metrics_get_bca_intervals():
    stat = scores.statistic("chrf", [list(p) for p in zip(REFS, HYPS)] * 4)
    ts = bootstrap.TaskStats({"m": [stat]}, 32, resamples=500, seed_independent=["m"])
    e = ts.score("m")
    assert e.interval == "BCa" and e.low < e.value < e.high
    assert (e.low, e.high) != pytest.approx(bootstrap.percentile_interval(ts.replicates["m"]))


def test_stability_flags_seeds_that_spread_beyond_one_runs_test_error():
    v = np.random.default_rng(5).uniform(0, 100, 64)
    calm = bootstrap.TaskStats(seed_runs({"a": [v, v + 0.1, v - 0.1]}), 64).stability("a")
    wild = bootstrap.TaskStats(seed_runs({"a": [v - 15, v, v + 15]}), 64).stability("a")
    assert (
        not calm.unstable and wild.unstable and (wild.low, wild.high) == pytest.approx((v.mean() - 15, v.mean() + 15))
    )


# ---- claims: margins on the task's scale, FDR ------------------------------------------------------
def test_benjamini_hochberg_on_a_known_family_and_its_rate_on_a_synthetic_one():
    assert claims.benjamini_hochberg([0.01, 0.04, 0.03, 0.005, 0.2]).tolist() == [True, True, True, True, False]
    assert claims.benjamini_hochberg([0.04, 0.03]).tolist() == [True, True]  # 0.04 <= 2 x 0.05 / 2
    assert claims.benjamini_hochberg([0.06, 0.9]).tolist() == [False, False]
    rng = np.random.default_rng(6)
    fdp = []
    for _ in range(300):  # 50 true nulls (uniform p), 50 real effects (z shifted by 3)
        z = np.r_[rng.normal(0, 1, 50), rng.normal(3, 1, 50)]
        p = 2 * sps_norm_sf(np.abs(z))
        rejected = claims.benjamini_hochberg(p)
        fdp.append(rejected[:50].sum() / max(rejected.sum(), 1))
    assert np.mean(fdp) <= 0.05 * 1.1  # BH controls the FDR at q x m0 / m = 0.025 here
    naive = [np.mean(2 * sps_norm_sf(np.abs(rng.normal(0, 1, 50))) < 0.05) for _ in range(50)]
    assert np.mean(naive) > 0.04  # unadjusted, every null has a 5% chance: the control is doing something


def sps_norm_sf(x):
    from scipy.stats import norm

    return norm.sf(x)


def test_a_verdict_that_does_not_survive_fdr_control_is_inconclusive():
    checks = [claims.Check("c", f"t{i}", "", "", claims.REPRODUCED, p_value=p) for i, p in enumerate([0.04, 0.5, 0.6])]
    out = claims.control_fdr(checks)
    assert out[0].verdict.startswith(claims.INCONCLUSIVE) and "FDR control over 3 tests" in out[0].verdict
    assert claims.family_size(out) == 3


def test_relative_and_per_task_margins(tmp_path):
    a = synthetic_analysis(tmp_path, effects={"full": 0.0, "close": -2.0, "far": -25.0})
    full = a.score("full").value
    rel = {**CLAIM, "kind": "not_worse", "margin_relative": 0.2}
    del rel["margin"]
    check = lambda m, c: claims.evaluate([{**c, "method": m}], {"qa": a}, None)[0]
    assert check("close", rel).verdict == claims.REPRODUCED  # -2 is within 20% of ~50
    far = check("far", rel)
    assert far.verdict == claims.CONTRADICTED and "far − 0.8 × full > 0" in far.test
    assert a.contrast({"far": 1, "full": -0.8}).value == pytest.approx(a.score("far").value - 0.8 * full)
    per_task = {**CLAIM, "kind": "not_worse", "margin": {"qa": 30}}
    assert check("far", per_task).verdict == claims.REPRODUCED
    assert check("far", {**per_task, "margin": {"translation": 3}}).verdict.startswith(claims.NOT_RUN)
    assert "80% power" in far.power and far.p_value < 0.05


@pytest.mark.parametrize(
    "entry, error",
    [
        ("margin: {qa: x}", r"claim c1: field 'margin.qa' must be a number"),
        ("margin: 1, margin_relative: 0.1", r"claim c1: field 'margin': give exactly one"),
        ("margin_relative: 1.5", r"claim c1: field 'margin_relative' must be a number in \[0, 1\)"),
        ("than: full", r"claim c1: field 'margin': give exactly one"),
    ],
)
def test_claims_margin_validation_names_file_claim_and_field(tmp_path, entry, error):
    bad = tmp_path / "claims.yaml"
    than = "" if "than" in entry else "than: full, "
    bad.write_text(f"claims:\n  - {{id: c1, claim: x, source: y, kind: not_worse, method: lora, {than}{entry}}}\n")
    with pytest.raises(ValueError, match="claims.yaml: " + error):
        claims.load(bad)


# ---- timing claims against their control ----------------------------------------------------------
def latency_csv(path, control, variant=(76.4, 6.8, 146.0)):
    import pandas as pd

    rows = [("base", 0.0, 0.0, 0.0), (claims.CONTROL, *control), ("lora-merged", *variant)]
    pd.DataFrame(
        [
            {"measure": "forward", "batch": 1, "seq_len": 128, "variant": v, "overhead_pct": o}
            | {"overhead_ci_low": lo, "overhead_ci_high": hi, "repeats": 2}
            for v, o, lo, hi in rows
        ]
    ).to_csv(path, index=False)
    return path


def test_a_timing_verdict_needs_its_control_within_margin_and_carries_its_spread(tmp_path):
    claim = {"id": "t", "claim": "", "source": "", "kind": "latency_below", "variant": "lora-merged", "margin": 5}
    noisy = claims.evaluate([claim], {}, None, latency_csv(tmp_path / "a.csv", (167.0, -28.0, 363.0)))[0]
    assert noisy.verdict.startswith(claims.INCONCLUSIVE) and "control base vs base +167.0%" in noisy.verdict
    quiet = latency_csv(tmp_path / "b.csv", (0.2, -1.0, 1.5), variant=(0.5, -0.5, 1.0))
    ok = claims.evaluate([claim], {}, None, quiet)[0]
    assert ok.verdict == claims.REPRODUCED and "[-1.1, +1.9]" in ok.estimate  # 0.5 -+ hypot(1, 1.2), hypot(0.5, 1.3)
    slow = claims.evaluate([claim], {}, None, latency_csv(tmp_path / "c.csv", (0.2, -1.0, 1.5), (20.0, 15, 25)))[0]
    assert slow.verdict == claims.CONTRADICTED
    no_control = tmp_path / "d.csv"
    import pandas as pd

    pd.read_csv(quiet).query("variant != @claims.CONTROL").to_csv(no_control, index=False)
    assert "no control row" in claims.evaluate([claim], {}, None, no_control)[0].verdict


def test_the_control_name_is_the_latency_measurements_own():
    from peftbench.costs import latency_overhead

    assert claims.CONTROL == latency_overhead.CONTROL


def test_a_nonnegative_score_keeps_a_nonnegative_interval_when_seeds_widen_it():
    """Seeds 0 / 0 / 9 of a 0-100 score: the seed part widens the interval past 0; a score cannot go below it."""
    base = np.zeros(64)
    runs = [base.copy(), base.copy(), base.copy()]
    runs[2][:8] = 72.0  # mean 9
    ts = bootstrap.TaskStats(seed_runs({"m": runs}), 64)
    e = ts.score("m")
    assert e.low == 0.0 < e.value < e.high
    ts = bootstrap.TaskStats(seed_runs({"m": runs, "zero": [base]}), 64, seed_independent=["zero"])
    assert ts.difference("m", "zero").low < 0  # a difference is not clipped: it can be negative
