"""The whole DAG on the smoke profile, through the real `snakemake` command line.

Runs in a copy of the workflow (Snakefile, workflow/, config/, methods/, tasks/) so that a test can
add a method directory without touching the repository."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from peftbench import ROOT, identity, io
from peftbench.stats import claims

pytestmark = pytest.mark.slow
TASKS = ["qa", "summarization", "translation"]
METHODS = sorted(p.parent.name for p in (ROOT / "methods").glob("*/method.yaml"))


def snakemake(workdir, *args, configfiles=("config/smoke.yaml",)):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "snakemake", *args, "--cores", "2", "--configfile", *configfiles]
    res = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env)
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout[-4000:]}\n{res.stderr[-8000:]}"
    return res.stdout + res.stderr


def job_counts(output):
    """The 'Job stats' table of a dry run: {rule: count}."""
    table = output.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("workflow")
    shutil.copy(ROOT / "Snakefile", d)
    for sub in ("workflow", "config", "methods", "tasks"):
        shutil.copytree(ROOT / sub, d / sub, ignore=shutil.ignore_patterns("__pycache__"))
    return d


def test_dry_run_lists_exactly_the_expected_jobs(workdir):
    n = len(TASKS) * len(METHODS)
    assert job_counts(snakemake(workdir, "-n")) == {
        "base_model": 1, "data": len(TASKS), "finetune": n, "evaluate": n, "summary": 1, "report": 1, "all": 1,
        "paper_scale": 1, "latency_overhead": 1, "task_switch": 1}


def test_costs_lists_the_cost_measurements_the_dag_runs(workdir):
    (workdir / "config/no-costs.yaml").write_text("costs: [task_switch]\n")
    counts = job_counts(snakemake(workdir, "-n", configfiles=("config/smoke.yaml", "config/no-costs.yaml")))
    assert counts["task_switch"] == 1 and "paper_scale" not in counts and "latency_overhead" not in counts


def report_rows(md):
    """{(task, method): [cells]} from report.md's per-task tables (the sections named after a task)."""
    rows, task = {}, None
    for line in md.splitlines():
        if line.startswith("## "):
            task = line[3:].strip()
        elif task in TASKS and line.startswith("| ") and not line.startswith("| method"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[(task, cells[0])] = cells[1:]
    return rows


def test_smoke_run_reaches_the_report(workdir):
    snakemake(workdir)
    md = (workdir / "reports/smoke/report.md").read_text()
    rows = report_rows(md)
    assert set(rows) == {(t, m) for t in TASKS for m in METHODS}
    number = re.compile(r"^([\d,.]+( ± [\d.]+)?(%|M| B| KB| MB| GB)?"           # a number, mean ± std
                        r"|-?[\d.]+ \[-?[\d.]+, -?[\d.]+\]"                      # a score [95% interval]
                        r"|[+-][\d.]+ \[[+-][\d.]+, [+-][\d.]+\] (better|worse|≈)"  # a paired difference
                        r"|--)$")
    interval = re.compile(r"^-?[\d.]+ \[-?[\d.]+, -?[\d.]+\]$")
    for key, cells in rows.items():
        assert all(number.match(c) for c in cells), f"non-numeric cell in {key}: {cells}"
        assert interval.match(cells[0]), f"main score without its interval in {key}: {cells[0]}"
    assert "## Claims and verdicts" in md and all(c["id"] in md for c in claims.load())
    html = (workdir / "reports/smoke/report.html").read_text()
    assert html.count("<table") >= len(TASKS) and "</html>" in html      # + the papers' tables

    summary = pd.read_csv(workdir / "results/smoke/summary.csv")
    assert len(summary) == len(TASKS) * len(METHODS)
    assert summary[["main_score", "trainable_params", "storage_bytes", "latency_ms_per_token"]].notna().all().all()
    assert (summary.latency_ms_per_token > 0).all()
    full = summary[summary.method == "full"]
    assert (full.trainable_params == full.base_params).all() and (full.trainable_percent == 100).all()
    assert (summary[summary.method == "zero-shot"].trainable_params == 0).all()

    run = workdir / "results/smoke/tiny-random-llama/qa/lora/seed0"
    lm = io.read_json(run / "lm_eval.json")
    assert {"results", "configs", "versions", "n-samples"} <= set(lm)       # lm-eval's own layout
    assert set(lm["results"]["peftbench_qa"]) >= {"exact_match,none", "f1,none"}
    train = io.read_json(run / "train.json")
    assert len(train["loss_curve"]) == 3 and train["tokens_per_s"] > 0 and train["peak_memory_bytes"] > 0
    assert {"versions", "git", "config_hash", "seed", "hardware", "files"} <= set(train["provenance"])
    # the evaluated state is the trained one: its sha256 is recorded by fine-tuning and by the evaluation
    assert train["task_state_sha256"] == identity.sha256_file(run / "task_state.safetensors") == lm["peftbench"]["task_state_sha256"]
    assert train["reload_check"]["max_abs_logit_diff"] <= train["reload_check"]["tolerance"]
    assert io.read_json(workdir / "results/smoke/data/qa/checks.json")["counts"] == {"train": 24, "validation": 4, "test": 6}


def test_after_a_complete_run_there_is_nothing_to_do(workdir):
    assert "Nothing to be done" in snakemake(workdir, "-n")


def test_the_reports_render(workdir):
    """Snakemake's own report builds from the rule outputs marked report(); report.html, opened in a
    real browser (headless Chromium), shows every figure and every table with rows."""
    out = snakemake(workdir, "--report", "reports/smoke/snakemake-report.html")
    page = (workdir / "reports/smoke/snakemake-report.html").read_text()
    assert "pareto-qa.png" in page and "paper-order.csv" in page, out[-2000:]
    sys.path.insert(0, str(ROOT / "scripts"))
    import check_report_browser as browser
    if browser.browser() is None:
        pytest.skip("no headless Chromium (apt-get install chromium; scripts/setup.sh does)")
    figures = len(list((workdir / "reports/smoke/figures").glob("*.png")))
    seen = browser.check(workdir / "reports/smoke/report.html", min_images=figures, min_tables=len(TASKS) + 2)
    assert seen["problems"] == [], seen["problems"]
    assert seen["images"] == figures >= 2 * len(TASKS) + 2 and seen["rows"] >= len(TASKS) * len(METHODS)


def test_a_new_method_directory_is_a_new_row(workdir):
    """Copy methods/lora to methods/lora_r16 with another rank: no other edit."""
    new = workdir / "methods/lora_r16"
    shutil.copytree(workdir / "methods/lora", new)
    spec = yaml.safe_load((new / "method.yaml").read_text())
    spec["name"], spec["hyperparameters"]["r"] = "lora_r16", 16
    (new / "method.yaml").write_text(yaml.safe_dump(spec))

    assert job_counts(snakemake(workdir, "-n")) == {     # only its runs, and the tables that cover every method
        "finetune": 3, "evaluate": 3, "summary": 1, "report": 1, "all": 1, "latency_overhead": 1, "task_switch": 1}
    snakemake(workdir, "results/smoke/summary.csv")      # its rows (the report's rendering is tested above)
    summary = pd.read_csv(workdir / "results/smoke/summary.csv")
    assert {("qa", "lora_r16"), ("summarization", "lora_r16"), ("translation", "lora_r16")} <= \
        set(zip(summary.task, summary.method))
    summary = summary.set_index(["task", "method"])
    assert summary.loc[("qa", "lora_r16"), "trainable_params"] == 2 * summary.loc[("qa", "lora"), "trainable_params"]


def test_study_profile_is_three_seeds_of_every_method_and_task(workdir):
    n = 3 * len(TASKS) * len(METHODS)
    counts = job_counts(snakemake(workdir, "-n", configfiles=("config/study.yaml",)))
    assert counts["finetune"] == n and counts["evaluate"] == n and counts["report"] == 1
