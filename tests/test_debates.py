"""The field's live debates as claims (issue 30): LoRA forgets less than full fine-tuning (forgets_less), LoRA's
best learning rate is about 10x full fine-tuning's (lr_ratio), LoRA on all linear layers beats attention-only
LoRA at the same parameter count (better, same_params_within; config/debates.yaml). Synthetic inputs whose
truth is known: each verdict flips when the data says so."""

import numpy as np
import pandas as pd
import pytest
import torch
import transformers
import yaml

from peftbench import config, io
from peftbench import methods as methods_mod
from peftbench.paths import ROOT
from peftbench.report import report
from peftbench.stats import claims
from peftbench.stats import forgetting as forgetting_stats
from tests.test_stats import synthetic_analysis

FORGETS = {
    "id": "f",
    "claim": "",
    "source": "",
    "kind": "forgets_less",
    "method": "lora",
    "than": "full",
    "margin": 0,
}


def forgetting_runs(tmp_path, shifts, n=48, noise=0.004):
    """forgetting.json per (method, seed): each text's loss = the base's + shift x tokens + per-text noise; the
    texts' own difficulty is shared by every run (so a contrast of methods is paired through it)."""
    rng = np.random.default_rng(1)
    base, tokens = rng.uniform(100, 300, n), rng.integers(40, 120, n)
    text_effect = rng.normal(0, 0.05, n) * tokens  # every run moves a text the same way: cancels when paired
    run_dirs = {}
    for method, per_seed in shifts.items():
        for seed, shift in enumerate(per_seed):
            d = tmp_path / method / f"seed{seed}"
            loss = base + text_effect + shift * tokens + rng.normal(0, noise, n) * tokens
            io.write_json(
                d / "forgetting.json",
                {"per_text": {"loss_sums": list(loss), "tokens": tokens.tolist()}, "base_loss_sums": list(base)},
            )
            run_dirs[("qa", method, seed)] = d
    return run_dirs


def verdict(check):
    return check.verdict.split(" (")[0]


@pytest.mark.parametrize(
    "lora, expected",
    [
        ((0.010, 0.011, 0.009), claims.REPRODUCED),  # lora's loss rises 0.01 nats/token, full's 0.03
        ((0.050, 0.051, 0.049), claims.CONTRADICTED),  # lora's rises more
        ((0.028, 0.034, 0.028), claims.INCONCLUSIVE),  # about the same
    ],
)
def test_forgets_less_flips_with_the_data(tmp_path, lora, expected):
    run_dirs = forgetting_runs(tmp_path, {"lora": lora, "full": (0.030, 0.031, 0.029)})
    (check,) = claims.evaluate([FORGETS], {}, None, run_dirs=run_dirs)
    assert verdict(check) == expected, check
    assert check.p_value == check.p_value and claims.family_size([check]) == 1  # in the FDR family
    assert "paired bootstrap over the same n=48 texts" in check.test and "seeds lora 3, full 3" in check.test


def test_the_forgetting_contrast_is_paired_over_texts_not_two_intervals(tmp_path):
    run_dirs = forgetting_runs(tmp_path, {"lora": (0.01, 0.01), "full": (0.02, 0.02)})
    fs = forgetting_stats.per_task(run_dirs)["qa"]
    d, a, b = fs.contrast({"lora": 1, "full": -1}), fs.contrast({"lora": 1}), fs.contrast({"full": 1})
    assert d.value == pytest.approx(a.value - b.value)
    # the texts' shared difficulty cancels: far tighter than the two separate intervals combined
    assert d.se_test < 0.3 * np.hypot(a.se_test, b.se_test)
    # a single method's interval is the report's forgetting table's (fairness.forgetting_intervals)
    from peftbench.report import fairness

    e = fairness.forgetting_intervals(run_dirs)[("qa", "lora")]
    assert (e.value, e.low, e.high) == (a.value, a.low, a.high)


def test_forgetting_seeds_one_seed_fragility_and_not_run(tmp_path):
    one = forgetting_runs(tmp_path / "one", {"lora": (0.01,), "full": (0.03,)})
    (check,) = claims.evaluate([FORGETS], {}, None, run_dirs=one)
    assert "provisional" in check.flags
    # seeds that disagree widen the interval until it holds 0: the same means, inconclusive
    wide = forgetting_runs(tmp_path / "wide", {"lora": (-0.02, 0.04), "full": (0.03, 0.031)})
    assert verdict(claims.evaluate([FORGETS], {}, None, run_dirs=wide)[0]) == claims.INCONCLUSIVE
    only_full = {k: v for k, v in one.items() if k[1] == "full"}
    (check,) = claims.evaluate([{**FORGETS, "runs_in": "config/x.yaml"}], {}, None, run_dirs=only_full)
    assert check.verdict == (
        "not run: no forgetting.json with per-text losses for lora on qa (runs with --configfile config/x.yaml)"
    )


def analysis(tmp_path, effects, n=120):
    """Two seeds of each method on n shared qa examples (tests/test_stats.py's synthetic analysis)."""
    return synthetic_analysis(tmp_path / "samples", n=n, effects=effects, noise=5.0, seeds=(0, 1))


@pytest.mark.parametrize("lora, who", [(-10.0, "full learned more"), (10.0, "lora learned more"), (0.0, "neither")])
def test_the_target_scores_stand_beside_the_forgetting_verdict(tmp_path, lora, who):
    run_dirs = forgetting_runs(tmp_path, {"lora": (0.01, 0.011), "full": (0.03, 0.031)})
    a = analysis(tmp_path, {"lora": lora, "full": 0.0})
    (check,) = claims.evaluate([FORGETS], {"qa": a}, None, run_dirs=run_dirs)
    assert "target f1: lora " in check.test and "not at equal target score: " + who in check.test


# ---- lr_ratio ----------------------------------------------------------------------------------------
LR = {"id": "lr", "claim": "", "source": "", "kind": "lr_ratio", "method": "lora", "than": "full", "ratio": [3, 30]}
FACTORS = (0.333, 1, 3, 9)


def searched(winners, lrs=None, task_name="qa", spread=0.1):
    """summary.csv rows of a finished search: per (method, seed), validation losses on the grid with their
    minimum at the given factor (a V in log-factor, slope 1 per grid step)."""
    lrs = lrs or {"lora": 1e-3, "full": 1e-4}
    rows = []
    for method, per_seed in winners.items():
        for seed, best in enumerate(per_seed):
            row = {"task": task_name, "method": method, "seed": seed, "learning_rate": lrs[method]}
            for f in FACTORS:
                row[f"val_loss_lr_x{f:g}"] = 2.0 + spread * abs(np.log(f / best)) / np.log(3)
            row["tuned_lr_factor"] = best
            row["tuned_learning_rate"] = lrs[method] * best
            rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "lora, full, expected, estimate",
    [
        ((1, 1, 1), (1, 1, 1), claims.REPRODUCED, "10 [10, 10]"),  # 1e-3 vs 1e-4
        ((3, 3, 3), (1, 1, 1), claims.REPRODUCED, "30 [30, 30]"),  # one grid step up: 30x, the margin's end
        ((1, 1, 1), (3, 3, 3), claims.REPRODUCED, "3.33 [3.33, 3.33]"),  # one step down
        ((0.333, 0.333, 0.333), (3, 3, 3), claims.INCONCLUSIVE, "1.11"),  # lora's winner at the grid's lower edge
        ((1, 3, 1), (1, 1, 1), claims.REPRODUCED, "10 [10, 30]"),  # seeds split between 10x and 30x: both inside
    ],
)
def test_lr_ratio_verdicts(lora, full, expected, estimate):
    (check,) = claims.evaluate([LR], {}, searched({"lora": lora, "full": full}))
    assert verdict(check) == expected, check
    assert check.estimate.startswith(estimate), check.estimate
    assert check.p_value != check.p_value and claims.family_size([check]) == 0  # no p: not in the FDR family


def test_lr_ratio_contradicted_and_undecided_by_seeds():
    # the same winners, x1 for lora and x3 for full, at other paper rates: 1e-4 / 3e-4 = 0.333, far below 3
    (check,) = claims.evaluate([LR], {}, searched({"lora": (1, 1, 1), "full": (3, 3, 3)}, {"lora": 1e-4, "full": 1e-4}))
    assert verdict(check) == claims.CONTRADICTED and check.estimate.startswith("0.333 [0.333, 0.333]")
    # one grid step above the margin's end: lora x3 at 3e-3 vs full x1 at 1e-4 = 90x
    (check,) = claims.evaluate([LR], {}, searched({"lora": (3, 3, 3), "full": (1, 1, 1)}, {"lora": 3e-3, "full": 1e-4}))
    assert verdict(check) == claims.CONTRADICTED and check.estimate.startswith("90 [90, 90]")
    # 30.03x (a rate written as 0.999e-4): the margin's end within its 1% slack, as the grid's 0.333 for 1/3
    (check,) = claims.evaluate([LR], {}, searched({"lora": (3, 3), "full": (1, 1)}, {"lora": 1e-3, "full": 0.999e-4}))
    assert verdict(check) == claims.REPRODUCED and check.estimate.startswith("30 [30, 30]")
    # lora's seeds split between x1 (30x) and x3 (90x): the interval over seeds straddles the margin's end
    (check,) = claims.evaluate(
        [LR], {}, searched({"lora": (1, 3, 1, 3), "full": (1, 1, 1)}, {"lora": 3e-3, "full": 1e-4})
    )
    assert verdict(check) == claims.INCONCLUSIVE and check.estimate.startswith("30 [30, 90]"), check.estimate
    assert "each seed's own winner: lora x1, x3, x1, x3, full x1, x1, x1" in check.test


def test_lr_ratio_edge_one_seed_and_not_run():
    (check,) = claims.evaluate([LR], {}, searched({"lora": (9, 9), "full": (1, 1)}))
    assert "the best rate may lie beyond the grid: lora's winner x9 is the grid's largest factor" in check.verdict
    (check,) = claims.evaluate([LR], {}, searched({"lora": (1,), "full": (1,)}))
    assert check.verdict.startswith(claims.INCONCLUSIVE + " (one seed")
    plain = searched({"lora": (1,), "full": (1,)}).drop(columns=[f"val_loss_lr_x{f:g}" for f in FACTORS])
    (check,) = claims.evaluate([{**LR, "runs_in": "config/tuning.yaml"}], {}, plain)
    assert check.verdict == "not run: no learning-rate search ran (runs with --configfile config/tuning.yaml)"
    (check,) = claims.evaluate([LR], {}, searched({"lora": (1, 1)}))
    assert check.verdict == "not run: no finished learning-rate search of full on qa"


def test_a_diverged_candidate_never_wins():
    s = searched({"lora": (1, 1), "full": (1, 1)})
    s.loc[s.method == "full", "val_loss_lr_x1"] = np.nan  # full diverged at x1: x0.333 and x3 tie, x3 is nearer 1
    (check,) = claims.evaluate([LR], {}, s)
    assert check.estimate.startswith("3.33 ["), check.estimate


# ---- the same parameter count ---------------------------------------------------------------------
SMOLLM2 = dict(  # results/<model>/base_model/config.json of the default model
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    head_dim=64,
    vocab_size=49152,
    tie_word_embeddings=True,
)
TOLERANCE = 0  # config/debates.yaml: both variants train exactly 3,052,800


def trainable(spec):
    lora = methods_mod.load_module(spec["dir"])
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(transformers.LlamaConfig(**SMOLLM2))
        base = sum(p.numel() for p in model.parameters())
        model = lora.attach(model, spec["hyperparameters"])
    return sum(p.numel() for p in model.parameters() if p.requires_grad), base


def test_the_debates_variants_train_the_same_count_on_the_default_model():
    cfg = config.load_profile(ROOT / "config/config.yaml", ROOT / "config/debates.yaml")
    specs = config.profile_methods(cfg)
    assert {"lora-all-linear", "lora-attention"} <= set(config.selected_methods(cfg, specs))
    all_linear, base = trainable(specs["lora-all-linear"])
    attention, _ = trainable(specs["lora-attention"])
    assert base == 134_515_008 and trainable(specs["lora"])[0] == 460_800  # the default LoRA, as stated
    assert all_linear == 3_052_800 and abs(all_linear - attention) <= TOLERANCE * attention
    c = next(c for c in claims.load() if c["id"] == "lora-all-linear-beats-attention")
    assert c["same_params_within"] == TOLERANCE and (c["method"], c["than"]) == ("lora-all-linear", "lora-attention")
    # and the default profile does not run them: the claim is "not run" there
    assert "lora-all-linear" not in config.profile_methods(config.load_profile(ROOT / "config/config.yaml"))


def test_same_params_within_keeps_or_undoes_the_verdict(tmp_path):
    a = analysis(tmp_path, {"full": 0.0, "better": 10.0})
    claim = {**FORGETS, "kind": "better", "method": "better", "than": "full", "same_params_within": 0.01}
    summary = lambda p: pd.DataFrame(
        {"task": "qa", "method": ["better", "full"], "trainable_params": [p, 1000], "trainable_percent": [1, 1]}
    )
    same = claims.evaluate([claim], {"qa": a}, summary(1005))[0]
    assert same.verdict == claims.REPRODUCED and "0.5% apart, the same count within 1%: yes" in same.test
    apart = claims.evaluate([claim], {"qa": a}, summary(1300))[0]
    assert apart.verdict.startswith(claims.INCONCLUSIVE + " (exact: the trainable counts are 30% apart")


# ---- the claims file and the report's first section ------------------------------------------------
@pytest.mark.parametrize(
    "entry, error",
    [
        ({**FORGETS, "margin": {"qa": 0.1}}, "claim f: field 'margin' must be a number"),
        ({**FORGETS, "margin_relative": 0.1}, "claim f: field 'margin_relative': only kinds"),
        (
            {k: v for k, v in FORGETS.items() if k != "margin"},
            "claim f: field 'margin' is required for kind forgets_less",
        ),
        ({**LR, "ratio": [30, 3]}, "claim lr: field 'ratio' must be [low, high]"),
        ({**LR, "ratio": 10}, "claim lr: field 'ratio' must be [low, high]"),
        ({k: v for k, v in LR.items() if k != "ratio"}, "claim lr: field 'ratio' is required for kind lr_ratio"),
        ({**LR, "runs_in": 3}, "claim lr: field 'runs_in' must be a string"),
        ({**FORGETS, "kind": "better", "same_params_within": 1.5}, "claim f: field 'same_params_within' must be"),
    ],
)
def test_new_kinds_validation_names_file_claim_and_field(tmp_path, entry, error):
    bad = tmp_path / "claims.yaml"
    bad.write_text(yaml.safe_dump({"claims": [entry]}))
    with pytest.raises(ValueError, match=str(bad)) as e:
        claims.load(bad)
    assert error in str(e.value)


def test_the_first_section_lists_every_claim_with_margin_and_where_it_runs(tmp_path):
    shipped = claims.load()
    ids = [c["id"] for c in shipped]
    assert {"lora-forgets-less", "lora-lr-ten-times-full", "lora-all-linear-beats-attention"} <= set(ids)
    a = analysis(tmp_path, {"lora": -5.0, "full": 0.0})  # the default profile: no variants, no search
    run_dirs = forgetting_runs(tmp_path, {"lora": (0.01, 0.011), "full": (0.03, 0.031)})
    summary = searched({"lora": (1, 1), "full": (1, 1)}).drop(columns=[f"val_loss_lr_x{f:g}" for f in FACTORS])
    summary = summary.assign(trainable_params=1, trainable_percent=0.1, storage_bytes=10, base_params=100)
    checks = claims.evaluate(shipped, {"qa": a}, summary, run_dirs=run_dirs)
    table = report.claims_table(shipped, checks).set_index("claim")
    assert list(table.index) == ids and list(table.columns) == ["statement", "source", "margin", "verdict", "flags"]
    assert table.loc["lora-forgets-less", "verdict"] == claims.REPRODUCED
    assert table.loc["lora-forgets-less", "margin"] == "forgetting lora − forgetting full < 0 nats/token on every task"
    assert table.loc["lora-lr-ten-times-full", "verdict"] == "not run (runs with --configfile config/tuning.yaml)"
    assert (
        table.loc["lora-lr-ten-times-full", "margin"] == "chosen lr lora / chosen lr full within [3, 30] on every task"
    )
    assert (
        table.loc["lora-all-linear-beats-attention", "verdict"]
        == "not run (runs with --configfile config/debates.yaml)"
    )
    assert table.loc["lora-all-linear-beats-attention", "margin"] == (
        "lora-all-linear − lora-attention > 0 on every task; trainable counts equal within 0%"
    )
    assert "Biderman et al. 2024" in table.loc["lora-forgets-less", "source"]
    assert table.loc["small-task-state", "verdict"] == claims.NOT_RUN  # no storage rows here: still listed
    # the forgetting test joins the paired family beside the score tests; the lr claim does not
    assert claims.family_size(checks) == sum(c.p_value == c.p_value for c in checks) >= 2
