"""A fair race (issue 13): the forgetting sample and loss, the learning-rate search's choice, the
training-FLOPs estimate and the report's fairness section (synthetic runs: no model trained here)."""

import builtins
import io as pyio
import math

import numpy as np
import pandas as pd
import pytest
import torch

from peftbench import config, io, methods
from peftbench.data import wiki
from peftbench.model.assemble import method_model
from peftbench.report import fairness, report
from peftbench.stages import forgetting, tuning


# ---- forgetting ------------------------------------------------------------------------------------
def test_general_text_is_fixed_and_disjoint_from_every_wiki_task():
    leads = wiki.load_leads()
    sample = forgetting.general_texts(32, leads=leads)
    assert sample == forgetting.general_texts(32, leads=leads) and len({r["id"] for r in sample}) == 32
    used = {r["id"] for r in wiki.summarization(leads)} | {r["id"] for r in wiki.cloze_qa(leads, seed=7)}
    assert not {r["id"] for r in sample} & used  # whole pools: no split of any size overlaps
    task_texts = {r["document"] for r in wiki.summarization(leads)} | {r["context"] for r in wiki.cloze_qa(leads)}
    assert not any(t in r["text"] for r in sample for t in task_texts)


@pytest.fixture
def general(tmp_path):
    path = tmp_path / "wiki_leads.jsonl"
    forgetting.build(path, 6)
    return path


CFG = {"precision": "fp32", "model": {}, "training": {"max_seq_len": 128}}


def test_zero_shot_forgetting_loss_equals_the_base_models_exactly(tiny_dir, method_specs, general, tmp_path):
    forgetting.base_job(CFG, tiny_dir, general, tmp_path / "base.json")
    for name in ("zero-shot", "few-shot"):
        model, tok, *_ = method_model(tiny_dir, method_specs[name], {})
        forgetting.measure(CFG, model, tok, general, tmp_path / "base.json", tmp_path / f"{name}.json")
        got = io.read_json(tmp_path / f"{name}.json")
        assert got["loss"] == got["base_loss"] == io.read_json(tmp_path / "base.json")["loss"] and got["delta"] == 0.0
        assert got["per_text"]["loss_sums"] == got["base_loss_sums"] and len(got["base_loss_sums"]) == 6
    with torch.no_grad():  # a changed model is seen: the test can fail
        next(model.parameters()).add_(0.05)
    forgetting.measure(CFG, model, tok, general, tmp_path / "base.json", tmp_path / "changed.json")
    assert io.read_json(tmp_path / "changed.json")["delta"] != 0.0


def test_each_texts_loss_is_its_own_whatever_the_batch(tiny_dir, method_specs, general):
    """Batched by length with padding, a text's loss sum is the one it gets alone (no padding at all)."""
    model, tok, *_ = method_model(tiny_dir, method_specs["lora"])
    texts = [r["text"] for r in io.read_jsonl(general)]
    sums, counts = forgetting.text_losses(model, tok, texts, batch_size=4, max_len=128)
    for text, got, n in zip(texts, sums, counts):
        (alone,), (n_alone,) = forgetting.text_losses(model, tok, [text], batch_size=1, max_len=128)
        assert got == pytest.approx(alone, rel=1e-5) and n == n_alone
    assert len(set(counts)) > 1  # the sample has texts of different lengths: padding was exercised


def test_forgetting_interval_is_a_paired_bootstrap_over_texts(tmp_path):
    """Every text a bit less likely: the interval excludes 0; half up, half down: it holds 0; unchanged: [0, 0]."""
    rng = np.random.default_rng(0)
    base, tokens = rng.uniform(100, 300, 32), rng.integers(40, 120, 32)
    shifts = {
        "worse": 0.02 * tokens,
        "mixed": np.where(np.arange(32) % 2, 1.0, -1.0) * 0.05 * tokens,
        "same": 0 * tokens,
    }
    run_dirs = {}
    for name, shift in shifts.items():
        d = tmp_path / name
        io.write_json(
            d / "forgetting.json",
            {"per_text": {"loss_sums": list(base + shift), "tokens": tokens.tolist()}, "base_loss_sums": list(base)},
        )
        run_dirs[("qa", name, 0)] = d
    est = fairness.forgetting_intervals(run_dirs)
    assert est[("qa", "worse")].value == pytest.approx(0.02) and est[("qa", "worse")].low > 0
    assert est[("qa", "mixed")].low < 0 < est[("qa", "mixed")].high
    assert est[("qa", "same")].low == est[("qa", "same")].high == 0.0


@pytest.mark.parametrize("name", ["lora", "prompt-tuning", "prefix", "loreft", "ia3", "houlsby"])
def test_every_kind_of_method_scores_the_general_text(tiny_dir, method_specs, general, name):
    model, tok, *_ = method_model(tiny_dir, method_specs[name])
    texts = [r["text"] for r in io.read_jsonl(general)]
    sums, counts = forgetting.text_losses(model, tok, texts, batch_size=4, max_len=128)
    assert all(math.isfinite(x) for x in sums) and sum(counts) == sum(
        min(len(tok(t, add_special_tokens=False).input_ids), 128) - 1 for t in texts
    )


# ---- the learning-rate search ----------------------------------------------------------------------
def test_the_search_picks_the_lowest_validation_loss():
    c = lambda f, v: {"factor": f, "val_loss": v}
    assert tuning.choose([c(0.333, 2.5), c(1, 2.1), c(3, 1.9)])["factor"] == 3
    assert tuning.choose([c(0.333, 1.7), c(1, 2.1), c(3, float("nan"))])["factor"] == 0.333
    assert tuning.choose([c(0.333, 2.0), c(1, 2.0), c(3, 2.0)])["factor"] == 1  # a tie: the paper's rate
    assert tuning.choose([c(1, None), c(3, 2.4)])["factor"] == 3  # diverged never wins
    with pytest.raises(ValueError, match="diverged"):
        tuning.choose([c(1, None), c(3, float("inf"))])


def test_selection_reads_the_candidates_train_and_val_loss_json_only_never_test_data(tmp_path, monkeypatch):
    """Decoys: each candidate folder also holds test scores that favour another rate, and the task's
    test.jsonl is beside them; every file the selection opens is recorded."""
    (tmp_path / "test.jsonl").write_text('{"id": "t", "prompt": "p", "target": "x"}\n')
    paths, vals = [], []
    for factor, val, test_score in [(0.333, 2.6, 90.0), (1, 2.2, 10.0), (3, 2.0, 5.0)]:
        d = tmp_path / f"lr_x{factor}"
        io.write_json(d / "train.json", {"training": {"learning_rate": 1e-4 * factor}})
        io.write_json(d / "val_loss.json", {"val_loss": val, "records": 8})
        io.write_json(d / "lm_eval.json", {"peftbench": {"scores": {"f1": test_score}, "main_metric": "f1"}})
        paths.append(d / "train.json")
        vals.append(d / "val_loss.json")
    opened, real = [], builtins.open

    def spy(file, *a, **k):
        opened.append(str(file))
        return real(file, *a, **k)

    monkeypatch.setattr(builtins, "open", spy)
    monkeypatch.setattr(pyio, "open", spy)
    tuning.select_job([0.333, 1, 3], paths, vals, tmp_path / "tuning.json")
    monkeypatch.undo()
    chosen = io.read_json(tmp_path / "tuning.json")
    assert chosen["chosen_factor"] == 3 and chosen["chosen_learning_rate"] == pytest.approx(3e-4)
    assert chosen["validation_records"] == 8  # the report quotes it (issue 28, item 7): the run's, not the docs'
    read = [p for p in opened if not p.endswith(".tmp") and not p.startswith("/proc/")]  # io.umask reads its own
    assert read and all(p.endswith(("train.json", "val_loss.json")) for p in read), read


def test_a_candidate_scales_the_methods_own_rate_and_nothing_else(method_specs):
    cfg = config.load_profile(config.CONFIG / "config.yaml", config.CONFIG / "tuning.yaml")
    assert cfg["tuning"]["lr_factors"] == [0.333, 1, 3, 9]
    for name in ("lora", "prefix", "full"):
        spec = method_specs[name]
        base = config.training_settings(cfg, spec)
        cand = config.training_settings(tuning.candidate_config(cfg, spec, "3"), spec)
        assert cand == {**base, "learning_rate": 3 * base["learning_rate"]}
    assert set(tuning.tuned_methods(cfg, method_specs, list(method_specs))) == set(method_specs) - {
        "zero-shot",
        "few-shot",
    }  # what trains is tuned
    assert (
        tuning.tuned_methods(config.load_profile(config.CONFIG / "config.yaml"), method_specs, list(method_specs)) == []
    )


def test_lr_factors_must_keep_the_paper_default(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tuning: {lr_factors: [0.5, 2]}\n")
    with pytest.raises(config.ConfigError, match="tuning.lr_factors"):
        config.load_profile(config.CONFIG / "config.yaml", bad)


# ---- training cost and the report section ------------------------------------------------------------
def test_training_flops_estimate():
    assert fairness.train_flops(100, 100, 10) == 6 * 100 * 10  # full fine-tuning: 6 N D
    assert fairness.train_flops(100, 1, 10) == (4 * 100 + 2) * 10  # frozen base: ~4 N D
    assert fairness.train_flops(100, 0, 10) == 0.0  # nothing trained


def synthetic_summary():
    rows = []
    for task, metric in (("qa", "f1"), ("summarization", "rougeL")):
        for method, params, paper, factor, tuned_score, losses in [
            ("full", 1000, 40.0, 0.333, 45.0, (1.8, 2.0, 2.4)),
            ("lora", 10, 38.0, 3.0, 47.0, (2.3, 2.1, 1.9)),
            ("zero-shot", 0, 20.0, None, None, None),
        ]:
            r = {
                "model": "tiny",
                "task": task,
                "method": method,
                "seed": 0,
                "main_metric": metric,
                "main_score": paper,
                "trainable_params": params,
                "train_wall_s": 10.0 if params else 0.0,
                "train_flops": fairness.train_flops(1000, params, 500),
                "learning_rate": 1e-4,
                "forgetting_loss": 3.0 + (params > 0) * 0.1,
                "forgetting_base_loss": 3.0,
                "forgetting_delta": (params > 0) * 0.1,
            }
            if factor:
                r.update(
                    {f"val_loss_lr_x{f:g}": v for f, v in zip((0.333, 1, 3), losses)},
                    tuned_lr_factor=factor,
                    tuned_learning_rate=1e-4 * factor,
                    tuned_main_score=tuned_score,
                )
            rows.append(r)
    return pd.DataFrame(rows)


def test_fairness_section_shows_tuned_beside_paper_default_and_the_figures(tmp_path):
    summary = synthetic_summary()
    assert fairness.tuned(summary)
    out = fairness.output_files(tmp_path, ["qa", "summarization"], tuning=True)
    colors = {"full": "C0", "lora": "C1", "zero-shot": "C2"}
    section = fairness.section(summary, colors, out, report.Section, report.Table, report.Figure)
    for name, path in out.items():
        assert path.is_file() and path.stat().st_size > 0, name
    table = pd.read_csv(out["tuning_table"]).set_index(["task", "method"])
    assert table.loc[("qa", "lora"), "rank (paper lr)"] == 2 and table.loc[("qa", "lora"), "rank (tuned)"] == 1
    assert table.loc[("qa", "zero-shot"), "score (tuned)"] == 20.0  # nothing to tune: its own score
    assert "qa: lora 2 -> 1 (38.00 -> 47.00 f1); full 1 -> 2 (40.00 -> 45.00 f1)." in section.text
    assert table.loc[("qa", "full"), "chosen lr"] == pytest.approx(3.33e-5)
    # both winners sit at an end of the grid x0.333, 1, 3: said, as a possible understatement of tuning
    assert table["at grid edge"].to_dict() == {k: k[1] != "zero-shot" for k in table.index}
    edge = next(t for t in section.text if "grid's edge" in t)
    assert edge.startswith("4 of 4 searches chose the grid's edge (x0.333 or x3): qa lora x3; qa full x0.333;")
    summary.loc[summary.method == "lora", "tuned_lr_factor"] = 1.0  # inside the grid
    table = fairness.tuning_table(summary)
    assert fairness.edge_choices(table, fairness.grid(summary)).startswith("2 of 4 searches")
    forget = pd.read_csv(out["forgetting_table"]).set_index("method")
    assert forget.loc["zero-shot", "qa"] == 0.0 and forget.loc["lora", "qa"] == pytest.approx(0.1)
    assert sum(isinstance(i, report.Figure) for i in section.items) == 2 + 2  # forgetting, sensitivity, 2 x compute


def test_summary_columns_of_a_run_folder(tmp_path):
    run = tmp_path / "run"
    io.write_json(
        run / "train.json",
        {"training": {"learning_rate": 2e-4}, "train_tokens": 100, "total_params": 50, "trainable_params": 5},
    )
    io.write_json(run / "forgetting.json", {"loss": 3.5, "base_loss": 3.0, "delta": 0.5})
    io.write_json(
        run / "tuning.json",
        {
            "candidates": [{"factor": 0.333, "val_loss": 2.0}, {"factor": 1.0, "val_loss": 2.5}],
            "chosen_factor": 0.333,
            "chosen_learning_rate": 6.66e-5,
            "validation_records": 8,
            "chosen_share": 0.9,
        },
    )
    io.write_json(run / "tuned/lm_eval.json", {"peftbench": {"scores": {"f1": 30.0}, "main_metric": "f1"}})
    io.write_json(run / "tuned/forgetting.json", {"delta": 0.25})
    cols = fairness.summary_columns(run)
    assert cols == {
        "learning_rate": 2e-4,
        "train_tokens": 100,
        "train_flops": (4 * 50 + 2 * 5) * 100,
        "forgetting_loss": 3.5,
        "forgetting_base_loss": 3.0,
        "forgetting_delta": 0.5,
        "val_loss_lr_x0.333": 2.0,
        "val_loss_lr_x1": 2.5,
        "tuning_validation_records": 8,
        "tuned_chosen_share": 0.9,
        "tuned_lr_factor": 0.333,
        "tuned_learning_rate": 6.66e-5,
        "tuned_main_score": 30.0,
        "tuned_forgetting_delta": 0.25,
    }
    (run / "forgetting.json").unlink()
    assert math.isnan(pd.Series([fairness.summary_columns(run)["forgetting_delta"]], dtype=float)[0])


def test_a_diverged_candidate_is_recorded_and_loses(tmp_path, method_specs, monkeypatch):
    from peftbench.stages import pipeline

    def diverges(cfg, *args):
        raise FloatingPointError("loss is nan at step 2: training diverged")

    monkeypatch.setattr(pipeline, "finetune", diverges)
    cfg = config.load_profile(config.CONFIG / "config.yaml", config.CONFIG / "tuning.yaml")
    run = tmp_path / "lr_x3"
    (run / "checkpoints" / "step1").mkdir(parents=True)
    tuning.finetune_candidate(
        cfg, "base", "qa", method_specs["lora"], 0, "data", 3, run / "task_state.safetensors", run / "train.json"
    )
    rec = io.read_json(run / "train.json")
    assert "diverged" in rec["diverged"] and not (run / "checkpoints").exists()
    assert rec["training"]["learning_rate"] == pytest.approx(
        3 * config.training_settings(cfg, method_specs["lora"])["learning_rate"]
    )
    assert methods.load_state(run / "task_state.safetensors") == {}
    tuning.validation_loss_job(cfg, "base", "qa", method_specs["lora"], run, "data", run / "val_loss.json")
    assert io.read_json(run / "val_loss.json")["val_loss"] is None  # no model is loaded for a diverged candidate
    io.write_json(tmp_path / "x1/train.json", {"training": {"learning_rate": 1e-4}})
    io.write_json(tmp_path / "x1/val_loss.json", {"val_loss": 2.0})
    trains, vals = (
        [tmp_path / "x1/train.json", run / "train.json"],
        [tmp_path / "x1/val_loss.json", run / "val_loss.json"],
    )
    tuning.select_job([1, 3], trains, vals, tmp_path / "tuning.json")
    assert io.read_json(tmp_path / "tuning.json")["chosen_factor"] == 1


def test_the_searchs_validation_loss_is_the_trained_models_own(tmp_path, tiny_dir, method_specs):
    """validation_loss_job, on the stored state through the method's load, equals the loss the fine-tuning job
    measures on the model it has just trained (training.val_loss_after), exactly in fp32; and it refuses a
    state that is not the one its train.json recorded."""
    from peftbench.stages import pipeline

    cfg = config.load_profile(config.CONFIG / "smoke.yaml")
    cfg["training"] = {**cfg["training"], "val_loss_after": True}
    data = tmp_path / "data"
    records = [{"id": str(i), "prompt": f"Question: {i} plus one?\nAnswer:", "target": f" {i + 1}"} for i in range(8)]
    io.write_jsonl(data / "train.jsonl", records)
    io.write_jsonl(data / "validation.jsonl", records[:3])
    for name in ("lora", "prefix"):
        run = tmp_path / name
        spec = method_specs[name]
        pipeline.finetune(cfg, tiny_dir, "qa", spec, 0, data, run / "task_state.safetensors", run / "train.json", 1)
        tuning.validation_loss_job(cfg, tiny_dir, "qa", spec, run, data / "validation.jsonl", run / "val_loss.json")
        measured = io.read_json(run / "val_loss.json")
        assert measured["val_loss"] == io.read_json(run / "train.json")["val_loss_after"] and measured["records"] == 3
    methods.save_state({}, run / "task_state.safetensors")
    with pytest.raises(ValueError, match="differs from the .* its train.json recorded"):
        tuning.validation_loss_job(cfg, tiny_dir, "qa", spec, run, data / "validation.jsonl", run / "v.json")


def test_when_the_paper_default_wins_its_evaluation_is_the_tuned_one(tmp_path):
    run = tmp_path / "seed0"
    for name in tuning.EVALUATED:
        io.write_text(run / name, f"{name} of the default run\n")
    io.write_json(run / "tuning.json", {"chosen_factor": 1.0, "chosen_run": str(run)})
    tuning.evaluate_tuned({}, None, "qa", {}, run / "tuning.json", run, None, None, 0, None, run / "tuned")
    assert all((run / "tuned" / n).read_text() == f"{n} of the default run\n" for n in tuning.EVALUATED)


def write_samples(run, values):
    io.write_jsonl(
        run / "samples.jsonl",
        [
            {"doc_id": i, "target": "", "filtered_resps": [""], "metrics": {"f1": float(v), "exact_match": 0.0}}
            for i, v in enumerate(values)
        ],
    )


def test_tuned_scores_carry_paired_intervals_and_a_swap_says_whether_it_is_decided(tmp_path):
    """Two arms on the same test examples: full and lora at the papers' rates, then each method's winner.
    lora's search gains +12 F1 (decided: tuned - paper > 0) and overtakes full by a decided margin; full's
    winner is the paper default (its tuned folder holds a copy of the same scores: difference exactly 0)."""
    rng = np.random.default_rng(0)
    difficulty = rng.uniform(20, 80, 400)
    per_example = {
        ("full", ""): difficulty + 5,
        ("full", "tuned"): difficulty + 5,
        ("lora", ""): difficulty + rng.normal(0, 3, 400),
        ("lora", "tuned"): difficulty + 12 + rng.normal(0, 3, 400),
    }
    run_dirs = {}
    for (method, arm), values in per_example.items():
        run = tmp_path / method / "seed0"
        write_samples(run / arm if arm else run, np.clip(values, 0, 100))
        run_dirs[("qa", method, 0)] = run
    arms = fairness.tuned_run_dirs(run_dirs)
    assert arms[("qa", "lora (tuned)", 0)] == tmp_path / "lora/seed0/tuned"
    analyses = report.analyses_of({"qa": config.load_task("qa")}, ["qa"], arms)
    summary = pd.DataFrame(
        [
            {"task": "qa", "method": m, "main_metric": "f1", "learning_rate": 1e-4, "main_score": paper}
            | {"tuned_lr_factor": f, "tuned_learning_rate": 1e-4 * f, "tuned_main_score": tuned}
            for m, paper, f, tuned in [
                ("full", analyses["qa"].score("full").value, 1.0, analyses["qa"].score("full (tuned)").value),
                ("lora", analyses["qa"].score("lora").value, 3.0, analyses["qa"].score("lora (tuned)").value),
            ]
        ]
    )
    table = fairness.tuning_table(summary, analyses).set_index("method")
    assert table.loc["full", "tuned - paper"] == 0.0 and table.loc["full", "tuning changed the score"].startswith("no")
    assert table.loc["lora", "tuning changed the score"] == "better" and table.loc["lora", "diff ci low"] > 0
    assert table.loc["lora", "tuned ci low"] < table.loc["lora", "score (tuned)"] < table.loc["lora", "tuned ci high"]
    lines = fairness.rank_changes(table.reset_index(), analyses)
    assert lines[0].startswith("qa: ") and "lora 2 -> 1" in lines[0]
    (swap,) = lines[1:]
    # decided: the tuned order and the interaction (tuned lora - tuned full) - (lora - full) both exclude 0; one
    # seed of each trained method: provisional (the seed-blind report said plainly "decided")
    assert swap.startswith("qa: lora now ahead of full") and ": decided (provisional: " in swap


def test_a_swap_from_a_tie_is_not_decided_without_the_interaction(tmp_path):
    """a and b tie at the papers' rates (noisy, a slightly behind) and tuned a leads tuned b by a decided
    margin: the tuned order is decided but the interaction (tuned a - tuned b) - (a - b) holds 0, so the swap
    is not. When a was clearly behind, the same tuned lead is a decided swap."""
    rng = np.random.default_rng(1)
    d = rng.uniform(20, 80, 64)
    base = {("a", "tuned"): d + 2 + rng.normal(0, 0.3, 64), ("b", "tuned"): d + rng.normal(0, 0.3, 64)}
    for behind, decided in [(0.3, False), (15.0, True)]:
        arms = {**base, ("a", ""): d - behind + rng.normal(0, 15, 64), ("b", ""): d + rng.normal(0, 15, 64)}
        run_dirs = {}
        for seed in (0, 1, 2):  # three seeds, identical: no seed variance, nothing provisional
            for (m, arm), values in arms.items():
                run = tmp_path / str(behind) / m / f"seed{seed}"
                write_samples(run / arm if arm else run, values)
                run_dirs[("qa", m, seed)] = run
        a = report.analyses_of({"qa": config.load_task("qa")}, ["qa"], fairness.tuned_run_dirs(run_dirs))["qa"]
        diff, interaction, verdict = fairness.swap(a, "a", "b")
        assert diff.verdict() == "better" and (verdict == "decided") == decided, verdict
        assert interaction.value == pytest.approx(diff.value - a.difference("a", "b").value)
        if not decided:
            assert "interaction holds 0" in verdict


def test_forgetting_interval_widens_with_disagreeing_seeds_and_one_seed_is_provisional(tmp_path):
    rng = np.random.default_rng(2)
    base, tokens = rng.uniform(100, 300, 32), rng.integers(40, 120, 32)
    run_dirs = {}
    for method, shifts in {"agree": (0.02, 0.02), "disagree": (0.0, 0.04), "single": (0.02,)}.items():
        for seed, shift in enumerate(shifts):
            d = tmp_path / method / f"seed{seed}"
            io.write_json(
                d / "forgetting.json",
                {"per_text": {"loss_sums": list(base + shift * tokens), "tokens": tokens.tolist()}}
                | {"base_loss_sums": list(base)},
            )
            run_dirs[("qa", method, seed)] = d
    est = fairness.forgetting_intervals(run_dirs)
    agree, disagree = est[("qa", "agree")], est[("qa", "disagree")]
    assert agree.value == pytest.approx(disagree.value) and agree.se_seed == 0
    assert disagree.high - disagree.low > agree.high - agree.low and disagree.seed_share > 0.5
    assert est[("qa", "single")].provisional and not agree.provisional
    assert not fairness.forgetting_intervals(run_dirs, seed_independent=["single"])[("qa", "single")].provisional


def test_a_corrupt_val_loss_json_is_named(tmp_path):
    """The search's criterion file truncated: an error naming it, not a bare JSONDecodeError (issue 27)."""
    io.write_json(tmp_path / "train.json", {"training": {"learning_rate": 1e-4}})
    (tmp_path / "val_loss.json").write_text('{"val_loss": ')
    with pytest.raises(ValueError, match=r"val_loss.json: not valid JSON \(Expecting value, line 1\)"):
        tuning.select_job([1], [tmp_path / "train.json"], [tmp_path / "val_loss.json"], tmp_path / "tuning.json")
    assert not (tmp_path / "tuning.json").exists()


def test_the_report_quotes_how_many_validation_records_each_search_read():
    summary = pd.DataFrame(
        {
            "task": ["qa", "qa", "summarization"],
            "tuning_validation_records": [8.0, 8.0, 32.0],
            "method": ["a", "b", "a"],
        }
    )
    assert (
        fairness.validation_records(summary) == "over 8 validation records (qa), 32 validation records (summarization)"
    )
    assert fairness.validation_records(summary.drop(columns="tuning_validation_records")) == ""


def test_the_choice_share_says_how_often_resampled_validation_records_choose_the_same_rate():
    """tuning.choice_shares: the search's argmin on bootstrap draws of the validation records. Two candidates
    whose per-record losses differ everywhere by far: the winner wins every draw; equal but for one record where
    x3 is better: x3 wins the draws that hold that record (1 - (1 - 1/n)^n, 66% at n = 8), the tie rule gives
    the others to the paper's rate."""
    cands = [{"factor": 1.0, "val_loss": 1.0}, {"factor": 3.0, "val_loss": 2.0}]
    far = [{"loss_sums": [1.0] * 8, "tokens": [1] * 8}, {"loss_sums": [2.0] * 8, "tokens": [1] * 8}]
    assert tuning.choice_shares(cands, far) == {"1": 1.0}
    one = [{"loss_sums": [1.0] * 8, "tokens": [1] * 8}, {"loss_sums": [1.0] * 7 + [0.5], "tokens": [1] * 8}]
    cands = [{"factor": 1.0, "val_loss": 1.0}, {"factor": 3.0, "val_loss": 7.5 / 8}]
    shares = tuning.choice_shares(cands, one)
    assert shares["3"] == pytest.approx(1 - (7 / 8) ** 8, abs=0.03) and shares["1"] + shares["3"] == pytest.approx(1)
    assert tuning.choice_shares(cands, [one[0], None]) == {}  # a padded pass kept no per-record losses
