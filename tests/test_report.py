"""The report from results/ alone: tables (mean ± std over seeds, ratios to full fine-tuning), CSV and
LaTeX, figures, the papers' figures beside ours, optional cost tables, the regenerate command, and
the page as a real browser renders it. Runs are written as the DAG writes them (train.json,
lm_eval.json, latency.json), with made-up numbers: no model is trained here."""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure

from peftbench import config, io
from peftbench.paths import ROOT
from peftbench.report import aggregate, explore, figures, report, tables
from peftbench.stats import claims

sys.path.insert(0, str(ROOT / "scripts"))
import check_report_browser as browser  # noqa: E402

TASKS = ["summarization", "translation", "qa"]
MAIN = {"summarization": "rougeL", "translation": "chrf", "qa": "f1"}
BASE = 1_000_000
# method: (trainable params, stored bytes, main score, ms/token, step s)
METHODS = {
    "full": (BASE, 4 * BASE, 40.0, 10.0, 2.0),
    "lora": (8_000, 32_000, 38.0, 10.0, 1.0),
    "houlsby": (30_000, 120_000, 30.0, 12.0, 1.2),
    "prefix": (50_000, 4_000, 20.0, 11.0, 1.1),
    "zero-shot": (0, 40, 10.0, 10.0, 0.0),
}


DEVIATIONS = [-6, -4, -2, 0, 0, 2, 4, 6]  # per-example scores around the run's score (their mean)
PAIRS = [
    ["the cat sat on the mat", "the cat sat on a mat"],
    ["a quick brown fox", "quick brown fox"],
    ["it rains in the north", "it rains up north"],
    ["we went to market", "we go to market"],
] * 2


def write_run(results, task, method, seed, complete=True):
    params, stored, score, ms, step = METHODS[method]
    score += seed  # seeds 0 and 1: mean +0.5, sample std 0.7071
    d = Path(results) / "tiny" / task / method / f"seed{seed}"
    metrics = config.load_task(task)["metrics"]
    d.mkdir(parents=True, exist_ok=True)
    (d / "task_state.safetensors").write_bytes(f"{task} {method} {seed}".encode())  # only its sha256 is read
    same = {
        "task_state_sha256": hashlib.sha256(f"{task} {method} {seed}".encode()).hexdigest(),
        "config_hash": "0" * 16,
    }
    io.write_json(
        d / "train.json",
        {
            "task_state_sha256": same["task_state_sha256"],
            "model": "tiny",
            "task": task,
            "method": method,
            "seed": seed,
            "trainable_params": params,
            "trainable_percent": 100 * params / BASE,
            "base_params": BASE,
            "stored_bytes_file": stored,
            "wall_time_s": 4 * step,
            "tokens_per_s": 100 / step if step else 0.0,
            "step_time_s": step,
            "peak_memory_bytes": 2e9 + seed * 1e6,
            "loss_curve": [3.0 - i * 0.5 - seed * 0.1 for i in range(4)] if step else [],
            "val_loss_before": 3.0,
            "val_loss_after": 1.5,
            "provenance": {"git": {"commit": "abc1234def", "dirty": False}, "config_hash": "0" * 16},
        },
    )
    io.write_json(
        d / "lm_eval.json",
        {
            "peftbench": {
                "scores": {m: score - (m != MAIN[task]) for m in metrics},
                "main_metric": MAIN[task],
                "wall_time_s": 1.0,
                **same,
            }
        },
    )
    if complete:
        io.write_json(d / "latency.json", {"ms_per_token_median": ms + seed, **same})
    io.write_jsonl(
        d / "samples.jsonl",
        [
            {
                "doc_id": i,
                "target": "t",
                "filtered_resps": ["o"],
                "metrics": {
                    m: (PAIRS[i] if m in ("bleu", "chrf") else score - (m != MAIN[task]) + dev) for m in metrics
                },
            }
            for i, dev in enumerate(DEVIATIONS)
        ],
    )
    return d


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    for t in TASKS:
        for m in METHODS:
            for s in (0, 1):
                write_run(root, t, m, s, complete=not (t == "qa" and m == "prefix" and s == 1))
    return root


def test_papers_own_task_and_model_take_precedence_over_the_stand_in():
    """A paper profile (config/paper-*.yaml) runs the paper's tasks, model and method variants: the
    comparison uses them (the mean over the commonsense sets it ran), and the model's own budget figure."""
    runs = [
        {
            "model": "llama-7b",
            "task": t,
            "method": m,
            "score_acc": acc + bump,
            "trainable_percent": pct,
            "storage_bytes": 1e6,
            "base_params": 1e9,
        }
        for t, bump in (("boolq", 0), ("piqa", 10))
        for m, acc, pct in (("lora", 70, 0.83), ("loreft", 60, 0.031))
    ]
    runs += [{**runs[0], "task": "qa", "score_f1": 99.0, "score_acc": None}]
    specs = {"boolq": {"main_metric": "acc"}, "piqa": {"main_metric": "acc"}, "qa": {"main_metric": "f1"}}
    order = tables.paper_orderings(pd.DataFrame(runs), specs).set_index("source").loc["Wu et al. 2024 (ReFT), Table 1"]
    assert order["our task"] == "mean of 2: boolq, piqa (acc)" and order["why this task"] == "the paper's own task"
    assert order["our order"] == "lora 75.0 > loreft 65.0" and order["pairs in the paper's order"] == "0/1"
    budget = tables.paper_budgets(pd.DataFrame(runs)).set_index("method")
    assert (
        budget.loc["lora", "source"] == "Wu et al. 2024 (ReFT), Table 1"
        and budget.loc["lora", "paper trainable"] == "0.826%"
    )

    e2e = [
        {
            "model": "gpt2-medium",
            "task": "e2e",
            "method": m,
            "score_bleu": b,
            "trainable_percent": 1.0,
            "storage_bytes": 1e6,
            "base_params": 1e9,
        }
        for m, b in (("adapter-h", 60.0), ("lora", 65.0), ("full", 66.0))
    ]
    order = tables.paper_orderings(pd.DataFrame(e2e), {"e2e": {"main_metric": "bleu"}}).iloc[0]
    assert order["paper order"] == "LoRA 0.35M 70.4 > FT 68.2 > Adapter-H 11.09M 67.3"  # the variant plays Adapter-H
    assert (
        order["our order"] == "full 66.0 > lora 65.0 > adapter-h 60.0" and order["pairs in the paper's order"] == "2/3"
    )


def test_peft_metamathqa_accuracy_and_forgetting_beside_ours():
    """peft's MetaMathQA results (papers.yaml) beside a run of config/paper-peft-metamathqa.yaml: accuracy on
    the task's main score, forgetting on the summary's forgetting_delta, lowest first."""
    runs = [
        {
            "model": "llama-3.2-3b",
            "task": "metamath-gsm8k",
            "method": m,
            "score_acc": acc,
            "forgetting_delta": fg,
            "trainable_percent": 1.0,
            "storage_bytes": 1e6,
            "base_params": 1e9,
        }
        for m, acc, fg in (
            ("lora", 45.0, 0.06),
            ("full", 48.0, 0.02),
            ("ia3", 30.0, 0.01),
            ("prompt-tuning", 20.0, 0.2),
        )
    ]
    out = tables.paper_orderings(pd.DataFrame(runs), {"metamath-gsm8k": {"main_metric": "acc"}})
    acc, fg = (out[out["paper setting"].str.contains(k)].iloc[0] for k in ("accuracy", "forgetting"))
    assert (
        acc["paper order"]
        == "LoRA r32 47.84 > full FT lr 1e-5 47.16 > IA3 lr 1e-3 39.8 > prompt tuning 200 lr 1e-3 34.34"
    )
    assert acc["our order"] == "full 48.0 > lora 45.0 > ia3 30.0 > prompt-tuning 20.0"
    assert acc["pairs in the paper's order"] == "5/6" and acc["why this task"] == "the paper's own task"
    assert (
        fg["paper order"]
        == "full FT lr 1e-5 0.03 < LoRA r32 0.05 < IA3 lr 1e-3 0.0504 < prompt tuning 200 lr 1e-3 0.1451"
    )
    assert fg["our order"] == "ia3 0.010 < full 0.020 < lora 0.060 < prompt-tuning 0.200"
    assert fg["our task"] == "metamath-gsm8k (forgetting_delta)" and fg["pairs in the paper's order"] == "4/6"
    # another base model: peft's rows are not compared
    other = tables.paper_orderings(
        pd.DataFrame([{**r, "model": "gpt2"} for r in runs]), {"metamath-gsm8k": {"main_metric": "acc"}}
    )
    assert other.empty or not other["source"].str.startswith("peft").any()


def write_costs(d):
    """The three cost measurements' CSVs, column names as loose as the renderer must accept."""
    d.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "source": ["LoRA Table 4"],
            "model": ["GPT-3"],
            "method": ["lora"],
            "paper_params": [4.7e6],
            "our_params": [4718592],
            "rel_diff_pct": [0.4],
        }
    ).to_csv(d / "paper_scale.csv", index=False)
    pd.DataFrame(
        {
            "setting": ["1/128", "1/128", "32/512", "32/512"],
            "variant": ["Adapter-H", "LoRA", "Adapter-H", "LoRA"],
            "median_ms": [25.1, 19.9, 1490, 1450],
            "overhead_pct": [28.0, 0.5, 2.9, 0.1],
            "paper_overhead_pct": [30.3, None, 3.0, None],
            "seq_len": [128, 128, None, None],  # as generation per token has none: no "nan tokens" in a title
        }
    ).to_csv(d / "latency_overhead.csv", index=False)
    pd.DataFrame(
        {"method": ["lora", "full"], "switch_median_ms": [3.1, 812.0], "ratio_to_full_load": [0.004, 1.0]}
    ).to_csv(d / "task_switch.csv", index=False)
    return report.default_costs(d.parent)


COST_TABLES, COST_FIGURES = 3, 1
FAIRNESS_FIGURES = len(TASKS) + 1  # peftbench.report.fairness: score vs training cost per task, forgetting


@pytest.fixture(scope="module")
def built(results, tmp_path_factory):
    """One report.build over the runs (seed 1 of qa/prefix incomplete), with the cost CSVs."""
    runs = [d for d in sorted(Path(results).glob("tiny/*/*/seed*")) if (d / "latency.json").exists()]
    summary = pd.DataFrame([aggregate.row(d) for d in runs])
    tmp = tmp_path_factory.mktemp("build")
    costs = write_costs(tmp / "results" / "costs")
    specs = {t: config.load_task(t) for t in TASKS}
    for stale in ("tables/tuning.csv", "figures/lr-sensitivity.png", "tables/my-notes.md"):  # an earlier profile's
        (tmp / "reports" / stale).parent.mkdir(parents=True, exist_ok=True)
        (tmp / "reports" / stale).write_text("from an lr-search run")
    out = report.build(
        summary,
        report.loss_curves(d / "train.json" for d in runs),
        tmp / "reports",
        specs,
        ["qa / prefix / seed1: evaluate not run"],
        costs,
        run_dirs={(d.parts[-3], d.parts[-2], int(d.name[4:])): d for d in runs},
    )
    return summary, tmp / "reports", out, costs


def test_pareto_front_is_the_methods_nothing_beats_with_fewer_parameters():
    params = [0, 10, 10, 100, 1000, 1000]
    scores = [5, 20, 15, 18, 30, 30]
    assert tables.pareto_front(params, scores).tolist() == [True, True, False, False, True, True]


def test_numbers_read_without_exponents():
    assert tables.fmt_pct(100 * 40 / 538090408) == "0.000007434%"
    assert tables.fmt_pct(100) == "100%" and tables.fmt_pct(0) == "0%"
    assert tables.fmt_bytes(538090408) == "538.1 MB" and tables.fmt_bytes(40) == "40 B"
    assert tables.fmt_bytes(2.0005e9, 7.07e5) == "2.0 ± 0.0 GB"


def test_stats_mean_std_over_seeds_and_ratios_to_full(built):
    summary, *_ = built
    stats = tables.method_stats(summary[summary.task == "summarization"], config.load_task("summarization"))
    assert list(stats.index) == ["full", "lora", "houlsby", "prefix", "zero-shot"]  # best rougeL first
    assert stats.loc["lora", "rougeL"] == pytest.approx(38.5)
    assert stats.loc["lora", "rougeL_std"] == pytest.approx(np.sqrt(0.5))
    assert stats.loc["lora", "seeds"] == 2
    assert stats.loc["lora", "storage_pct_of_full"] == pytest.approx(100 * 32_000 / (4 * BASE))
    assert stats.loc["lora", "step_time_vs_full"] == pytest.approx(0.5)
    assert stats.pareto.to_dict() == {"full": True, "lora": True, "houlsby": False, "prefix": False, "zero-shot": True}


def test_every_output_is_written(built):
    _, reports, out, costs = built
    assert set(out) == set(report.output_files(reports, TASKS, costs))
    for name, path in out.items():
        assert path.is_file() and path.stat().st_size > 0, name
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_an_earlier_reports_tables_do_not_stay_beside_this_ones(built):
    """Issue 27: a search profile's tuning.csv stayed in reports/tables after a run without the search."""
    _, reports, out, _ = built
    assert not (reports / "tables/tuning.csv").exists() and not (reports / "figures/lr-sensitivity.png").exists()
    assert (reports / "tables/my-notes.md").exists()  # not a file the report writes: left alone
    assert {p for p in (reports / "tables").iterdir() if p.suffix != ".md"} <= {Path(p) for p in out.values()}


def md_section(md, title):
    return md.split(f"\n## {title}\n")[1].split("\n## ")[0]


def test_markdown_tables_mean_std_and_missing_runs(built):
    _, _, out, _ = built
    md = out["md"].read_text()
    qa = md_section(md, "qa")
    header = next(line for line in qa.splitlines() if line.startswith("| method"))
    assert header.startswith(
        "| method | f1 (main) | exact_match | seed std (main) | vs full (main) | vs zero-shot (main) "
        "| trainable params | % of base | storage | % of full ckpt |"
    )
    lora = next(line for line in qa.splitlines() if line.startswith("| lora "))
    # seed mean [interval over examples and seeds] and the seeds' share of its variance
    assert re.search(r"\| 38\.50 \[3\d\.\d\d, 4\d\.\d\d\] seeds \d+% \| 37\.50 \[", lora)
    assert "| 0.71 [32.15, 44.85] |" in lora  # seed std, and the t interval of the mean over the 2 seeds
    # paired on examples (same deviations: no test variance), so all of it is the seeds': lora 38, 39 and full
    # 40, 41 give s² = 0.5 each, SE² = 0.5/2 + 0.5/2, Welch-Satterthwaite df 2: -2 -+ t_2 x 0.707 = [-5.0, +1.0]
    # (the seed-blind report said "-2.0 [-2.0, -2.0] worse": decided by two seeds that cannot show it)
    assert "| -2.0 [-5.0, +1.0] ≈ seeds 100% | +28.0 [+25.0, +31.0] better seeds 100% |" in lora
    assert "| 0.8% |" in lora and "| 0.50 |" in lora  # 8k of 1M; half full's step
    assert "Smallest difference in f1 this budget detects" in qa and "8 test examples" in qa
    prefix = next(line for line in qa.splitlines() if line.startswith("| prefix "))
    assert prefix.endswith("| 1 |")  # its seed 1 has no latency.json: one seed, no ±
    assert "provisional" in prefix.split(" | ")[1]  # a trained method with one seed: its seed variance is unknown
    assert md_section(md, "Missing runs").strip() == "qa / prefix / seed1: evaluate not run"
    for t in TASKS:
        assert f"![{t}: score against trainable parameters](figures/pareto-{t}.png)" in md
        assert f"](figures/loss-{t}.png)" in md


def test_csv_has_numbers_and_latex_is_booktabs(built):
    _, _, out, _ = built
    df = pd.read_csv(out["table_qa"])
    assert {"method", "f1", "f1_std", "trainable_params", "storage_pct_of_full", "step_time_vs_full", "pareto"} <= set(
        df.columns
    )
    assert df.set_index("method").loc["full", "f1"] == pytest.approx(40.5)
    tex = out["latex_qa"].read_text()
    assert all(r in tex for r in (r"\toprule", r"\midrule", r"\bottomrule", r"$\pm$", r"\caption{", r"\label{tab:qa}"))
    assert r"f1 (main)" in tex and r"\%" in tex and "±" not in tex


def test_papers_beside_ours(built):
    _, _, out, _ = built
    order = pd.read_csv(out["paper_order"]).set_index("source")
    lora_t3 = order.loc["Hu et al. 2021 (LoRA), Table 3"]
    # of LoRA Table 3's rows we ran lora, prefix, full, houlsby: ours ranks full > lora > houlsby > prefix
    assert lora_t3["our order"] == "full 40.5 > lora 38.5 > houlsby 30.5 > prefix 20.5"
    assert lora_t3["pairs in the paper's order"] == "3/6"
    assert order.loc["Li & Liang 2021 (Prefix-tuning), Table 2", "pairs in the paper's order"] == "1/1"
    assert "Wu et al. 2024 (ReFT), Table 1" not in order.index  # loreft did not run: no comparison
    budget = pd.read_csv(out["paper_budget"]).set_index("method")
    assert budget.loc["lora", "paper trainable"] == "0.09861%" and budget.loc["lora", "our trainable"] == "0.8%"


def test_cost_tables_render_as_captioned_tables_and_draw_the_latency_figure(built):
    _, _, out, costs = built
    assert list(costs) == [
        report.COST_TITLES[n] for n in ("latency_overhead.csv", "paper_scale.csv", "task_switch.csv")
    ]
    assert out["latency_paper"].read_bytes()[:4] == b"\x89PNG"
    papers = md_section(out["md"].read_text(), "Papers vs ours")
    assert (
        "*Task switching: time to swap one task's stored state, against loading a full checkpoint (task_switch.csv)*"
        in papers
    )
    assert "| lora | 3.1 | 0.004 |" in papers and "| 1/128 | Adapter-H | 25.1 | 28 | 30.3 |" in papers
    assert r"\toprule" in out["costs_paper_scale_latex"].read_text()


def test_html_is_self_contained(built):
    _, _, out, _ = built
    page = out["html"].read_text()
    assert page.count("<img src='data:image/png;base64,") == 2 * len(TASKS) + 2 + COST_FIGURES + FAIRNESS_FIGURES
    assert not re.search(r"src=['\"](?!data:)", page)  # nothing to fetch: opens offline, anywhere
    assert page.count("<table") == len(TASKS) + 2 + COST_TABLES + 2  # + the claims' two tables


def tree_digest(root):
    h = hashlib.sha1()
    for p in sorted(Path(root).rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def test_regenerate_command_reads_results_writes_only_reports_and_never_loads_torch(results, tmp_path):
    profile = tmp_path / "profile.yaml"
    (tmp_path / "results").symlink_to(results)  # paths inside the project, as the DAG requires
    profile.write_text(
        yaml.safe_dump(
            {
                "results": "results",
                "reports": "reports",
                "model": {"name": "tiny", "source": "tiny-random"},
                "seeds": [0, 1],
                "methods": list(METHODS),
                "tasks": {t: {"train": 4, "validation": 2, "test": 2} for t in TASKS},
            }
        )
    )
    before = tree_digest(results)
    code = (
        "import sys; from peftbench.report import report; report.main(['--configfile', sys.argv[1]]); "
        "assert 'torch' not in sys.modules, 'the report must not load torch'"
    )
    res = subprocess.run([sys.executable, "-c", code, str(profile)], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "26/27 runs" in res.stdout  # zero-shot runs seed 0 only (config.seed_dependent): 3 x (4 x 2 + 1)
    assert tree_digest(results) == before
    md = (tmp_path / "reports" / "report.md").read_text()
    assert "| 38.50 [" in md_section(md, "qa") and "Claims and verdicts" in md
    assert md_section(md, "Missing runs").strip().startswith("qa / prefix / seed1: evaluate ")


def test_the_browser_sees_every_image_and_table(built, tmp_path):
    if browser.browser() is None:
        pytest.skip("no headless Chromium (apt-get install chromium; scripts/setup.sh does)")
    _, _, out, _ = built
    images, n_tables = 2 * len(TASKS) + 2 + COST_FIGURES + FAIRNESS_FIGURES, len(TASKS) + 2 + COST_TABLES + 2
    seen = browser.check(out["html"], min_images=images, min_tables=n_tables)
    assert seen["problems"] == [] and seen["images"] == images and seen["tables"] == n_tables
    claim_rows = len(claims.load()) + len(pd.read_csv(out["claims"]))  # overall verdicts + every test
    assert seen["rows"] == len(TASKS) * len(METHODS) + 4 + 2 + (1 + 4 + 2) + claim_rows  # methods, budget, order, costs
    assert seen["sorted"]["reversed"] and seen["filtered"]["ok"]  # a header click sorts, the box filters
    pareto, loss = seen["charts"]  # the interactive charts: drawn, and redrawn by their controls
    assert pareto["chart"] == "pareto" and pareto["marks"] >= len(METHODS) - 2 and pareto["redrawn"] >= len(TASKS)
    assert loss["chart"] == "loss" and loss["marks"] > 0 and loss["redrawn"] >= 1

    page = out["html"].read_text()
    assert "title='qa: training loss'" in page  # an image's hover text: the titles drawn in it
    broken = tmp_path / "broken.html"  # one image that cannot decode, one table with no rows
    page = page.replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1)
    broken.write_text(re.sub(r"<tbody>.*?</tbody>", "<tbody></tbody>", page, count=1, flags=re.S))
    problems = browser.check(broken)["problems"]
    assert any("did not load or decode" in p for p in problems), problems
    assert any("no rows" in p for p in problems), problems
    broken.write_text(out["html"].read_text().replace("id='explore-data'>{", "id='explore-data'>{\"points\": NaN, ", 1))
    problems = browser.check(broken)["problems"]  # data the page cannot read: the charts draw nothing, and say so
    assert any("interactive chart 1 (pareto): nothing drawn" in p for p in problems), problems

    # 'nan' drawn in a figure (its PNG text), in an image's title or alt text, or inside a table cell
    figure = Figure(figsize=(2, 1))
    figure.subplots().set_title("generate_per_token, batch 1, nan tokens")
    nan_png = figures._save(figure, tmp_path / "nan.png")
    page = out["html"].read_text()
    first = re.search(r"data:image/png;base64,[^']*", page).group(0)
    page = page.replace(first, report._img(nan_png), 1)
    page = page.replace("title='qa: training loss'", "title='qa: nan'", 1).replace("alt='", "alt='None ", 1)
    page = re.sub(r"<td>([^<]*)</td>", r"<td>\1 [nan, nan]</td>", page, count=1)
    broken.write_text(page)
    problems = browser.check(broken)["problems"]
    assert any('drawn text reads "Title generate_per_token, batch 1, nan tokens"' in p for p in problems), problems
    assert any('title reads "qa: nan"' in p for p in problems), problems
    assert any('alt text reads "None ' in p for p in problems), problems
    assert any(p.endswith("[nan, nan]") for p in problems), problems


def test_claims_come_first_with_verdicts_from_the_runs(built):
    _, _, out, _ = built
    md = out["md"].read_text()
    assert md.split("\n## ")[1].startswith("Claims and verdicts")
    checks = pd.read_csv(out["claims"])
    row = lambda claim, where: checks[(checks.claim == claim) & (checks["where"] == where)].iloc[0]
    assert row("finetuning-beats-zero-shot", "qa").verdict == "reproduced"  # +30 on every example
    assert row("finetuning-beats-zero-shot", "translation").verdict.startswith("inconclusive")  # identical outputs
    assert row("pretraining-beats-scratch", "qa").verdict == "not run: no scored run of scratch on qa"
    # lora 38, 39 vs full 40, 41, margin 10% of full's score: lora - 0.9 x full = +2.05, nearly all of its
    # variance the two seeds' spread, so the interval holds 0 (the seed-blind report, 5 points, said reproduced)
    assert row("lora-close-to-full", "qa").verdict.startswith("inconclusive")
    assert row("lora-close-to-full", "qa").estimate.startswith("+2.05 [-0.21, +4.31] (seeds 96% of the variance")
    assert row("small-task-state", "prefix").verdict == "contradicted"  # 4 KB of a 4 MB checkpoint: 0.1%, not below
    intervals = pd.read_csv(out["intervals"])
    lora = intervals[(intervals.task == "qa") & (intervals.method == "lora") & (intervals.metric == "f1")].iloc[0]
    assert lora.ci_low < lora.score < lora.ci_high and lora.diff_vs_full == pytest.approx(-2.0)


def test_tables_sort_by_value_on_a_header_click(tmp_path):
    """report_tables.js in a browser: sizes sort by bytes (40 B < 230 KB < 1.86 MB), not as text; without the
    script, the check reports that no click sorts."""
    if browser.browser() is None:
        pytest.skip("no headless Chromium (apt-get install chromium; scripts/setup.sh does)")
    from peftbench.report.report import TABLES_JS

    def page(names, script=TABLES_JS):
        rows = "".join(
            f"<tr><td>{m}</td><td>{s}</td></tr>" for m, s in zip(names, ("1.86 MB", "40 B", "230 KB", "538 MB"))
        )
        path = tmp_path / "t.html"
        path.write_text(
            f"<html><body><table><thead><tr><th>method</th><th>storage</th></tr></thead><tbody>{rows}"
            f"</tbody></table><script>{script}</script></body></html>"
        )
        return browser.check(path, min_images=0)

    seen = page(["lora", "zero-shot", "ia3", "full"])
    assert seen["problems"] == [] and seen["sorted"]["column"] == "method"  # the first header whose click reorders
    seen = page(["a", "b", "c", "d"])  # names in order: storage reorders
    assert seen["sorted"]["column"] == "storage"
    assert seen["sorted"]["ascending"] == [
        "b40 B",
        "c230 KB",
        "a1.86 MB",
        "d538 MB",
    ]  # as text: 1.86 MB < 230 KB < 40 B
    assert any(
        "no header click reordered" in p for p in page(["lora", "zero-shot", "ia3", "full"], script="")["problems"]
    )


def test_latency_panels_leave_a_missing_setting_out(tmp_path):
    """Generation per token has no sequence length: its panel reads 'generate_per_token, batch 1', not
    'nan tokens'; a length read as a float (the column has a gap) reads as an integer."""
    csv = tmp_path / "latency_overhead.csv"
    pd.DataFrame(
        {
            "measure": ["forward", "forward", "generate_per_token", "generate_per_token"],
            "batch": [1, 1, 1, 1],
            "seq_len": [128, 128, None, None],
            "variant": ["base", "lora", "base", "lora"],
            "overhead_pct": [0.0, 1.0, 0.0, -3.6],
        }
    ).to_csv(csv, index=False)
    drawn = figures.png_text(figures.latency_overhead_vs_paper(csv, tmp_path / "latency-paper.png"))
    assert drawn["Title"] == "forward, batch 1, 128 tokens | generate_per_token, batch 1"


def curves_of(losses):
    return pd.DataFrame(
        [
            {"task": "qa", "method": m, "seed": seed, "step": i + 1, "loss": v + 0.1 * seed}
            for m, curve in losses.items()
            for seed in (0, 1)
            for i, v in enumerate(curve)
        ]
    )


def test_loss_curves_give_scratch_its_own_scale_and_cut_a_first_step_spike(tmp_path):
    """The default run's translation curves in shape: scratch at 8-11 nats flattened every other method (3-5)
    on one axis, and LoReFT's first step (8.8) the rest: scratch gets a panel of its own, the shared axis stops
    above the later steps, and the figure and the report's caption say both."""
    curves = curves_of(
        {
            "full": [3.7, 3.5, 3.6, 3.3, 3.3],
            "lora": [3.7, 3.6, 3.8, 3.5, 3.6],
            "prefix": [4.6, 4.6, 4.8, 5.0, 4.5],
            "loreft": [8.8, 5.2, 5.0, 4.8, 4.3],
            "scratch": [10.9, 10.7, 10.1, 9.7, 9.5],
        }
    )
    own, clip = figures.loss_axes(curves)
    assert own == ["scratch"] and 5.2 < clip < 6
    colors = figures.method_colors(curves.method.unique())
    drawn = figures.png_text(figures.loss_curves(curves, "qa", colors, tmp_path / "loss.png"))
    assert (
        drawn["Title"]
        == f"qa: training loss\ny axis cut at {clip:.2f} (▲: higher first steps) | scratch: own scale\n(loss far higher)"
    )
    assert "8.9" in drawn["Description"].split(" | ")  # the cut point's value, beside its marker (mean over seeds)
    assert "scratch in a panel of its own" in figures.loss_note(own, clip)

    alike = curves_of({m: [10.4, 10.3, 10.3] for m in ("full", "lora", "scratch")})  # the smoke profile's tiny model
    assert figures.loss_axes(alike) == ([], None)
    assert (
        figures.png_text(figures.loss_curves(alike, "qa", colors, tmp_path / "alike.png"))["Title"]
        == "qa: training loss"
    )


def test_wide_tables_scroll_inside_their_section_with_the_scrollbar_on_screen(tmp_path):
    """A table wider than a 1400 px window scrolls sideways inside its own box, and that box is no taller than the
    window, so its scrollbar is in view (a long wide table in a plain overflow-x box hid its right-hand columns:
    the scrollbar sat below the fold); the check fails a page without either."""
    if browser.browser() is None:
        pytest.skip("no headless Chromium (apt-get install chromium; scripts/setup.sh does)")
    head = "".join(f"<th>metric {j}</th>" for j in range(24))
    rows = "".join(
        f"<tr><td>method {i}</td>" + "".join(f"<td>{i + j}.25 [{i}.00, {i + j + 1}.50]</td>" for j in range(1, 24))
        for i in range(60)
    )
    table = f"<table><caption>wide</caption><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"

    def check(style, wrapped=True):
        path = tmp_path / "wide.html"
        body = f"<div class='scroll'>{table}</div>" if wrapped else table
        path.write_text(
            f"<html><head><style>{style}</style></head><body><section><h2>qa</h2>{body}</section>"
            f"<script>{report.TABLES_JS}</script></body></html>"
        )
        return browser.check(path, min_images=0)["problems"]

    assert check(report.STYLE) == []
    before = "td{white-space:nowrap} .scroll{overflow-x:auto}"  # the report's style before: no max-height
    assert any("its scrollbar is" in p and "below a" in p for p in check(before))
    assert any("no scrolling box" in p for p in check(report.STYLE, wrapped=False))


def test_the_interactive_charts_data_has_no_nan_and_cannot_end_its_script_block():
    summary = pd.DataFrame(
        {
            "task": ["qa", "qa", "qa"],
            "method": ["lora", "lora", "x</script><b>"],
            "seed": [0, 1, 0],
            "main_metric": "f1",
            "main_score": [40.0, 42.0, 10.0],
            "trainable_params": [100, 100, 0],
            "latency_ms_per_token": [float("nan"), float("nan"), 5.0],
        }
    )
    intervals = pd.DataFrame({"task": ["qa"], "method": ["lora"], "metric": ["f1"], "score": [41.0]})
    intervals["ci_low"], intervals["ci_high"] = 35.0, 47.0
    curves = pd.DataFrame({"task": "qa", "method": "lora", "seed": [0, 1], "step": [1, 1], "loss": [2.0, 3.0]})
    data = explore.payload(summary, intervals, curves, figures.method_colors(summary.method.unique()))
    lora, other = data["points"]
    assert (lora["score"], lora["low"], lora["high"], lora["seeds"]) == (41.0, 35.0, 47.0, [40.0, 42.0])
    assert lora["latency_ms_per_token"] is None and other["low"] is None and other["score"] == 10.0  # no interval
    assert data["losses"] == [{"task": "qa", "method": "lora", "steps": [1], "loss": [2.5]}]  # mean over seeds
    page = explore.html(data)
    assert page.count("</script>") == 1 and "NaN" not in page
    block = page.split("id='explore-data'>")[1].removesuffix("</script>")
    assert json.loads(block)["points"][1]["method"] == "x</script><b>"
