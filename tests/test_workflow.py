"""The whole DAG on the smoke profile, through the real `snakemake` command line.

Runs in a copy of the workflow (Snakefile, workflow/, config/, methods/, tasks/) so that a test can
add a method directory without touching the repository."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from peftbench import identity, io
from peftbench.paths import ROOT
from peftbench.stats import claims

pytestmark = pytest.mark.slow
TASKS = ["qa", "summarization", "translation"]
METHODS = sorted(p.parent.name for p in (ROOT / "methods").glob("*/method.yaml"))
SEEDS = yaml.safe_load((ROOT / "config/smoke.yaml").read_text())["seeds"]
SEED_FREE = {
    "zero-shot"
}  # trains nothing and draws no demonstrations: one run, whatever the seeds (config.seed_dependent)


def runs(methods=METHODS, seeds=len(SEEDS)):
    """(task, method, seed) runs per profile: every seed of a seed-dependent method, one of a seed-free one."""
    return len(TASKS) * sum(1 if m in SEED_FREE else seeds for m in methods)


def bare_shell():
    """A clean shell (`env -i`): only PATH (with the venv's bin, as after `source .venv/bin/activate`) and
    HOME. No HF_*_OFFLINE: an offline profile must go offline by itself (peftbench/offline.py)."""
    return {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.defpath}", "HOME": os.environ.get("HOME", "/tmp")}


def snakemake(workdir, *args, configfiles=("config/smoke.yaml",)):
    cmd = [str(Path(sys.executable).parent / "snakemake"), *args, "--cores", "2", "--configfile", *configfiles]
    res = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=bare_shell())
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
    for sub in ("profiles", "workflow", "config", "methods", "tasks"):
        shutil.copytree(ROOT / sub, d / sub, ignore=shutil.ignore_patterns("__pycache__"))
    return d


def test_dry_run_lists_exactly_the_expected_jobs(workdir):
    n = runs()
    assert job_counts(snakemake(workdir, "-n")) == {
        "base_model": 1,
        "data": len(TASKS),
        "finetune": n,
        "evaluate": n,
        "summary": 1,
        "report": 1,
        "all": 1,
        "paper_scale": 1,
        "latency_overhead": 1,
        "task_switch": 1,
        "general_text": 1,
        "general_loss_base": 1,
    }


def test_tuning_profile_adds_one_finetune_per_candidate_and_evaluates_only_the_winner(workdir):
    """config/tuning.yaml stacked: x1/3, x3 and x9 candidates beside each trained method's own run (x1), each
    candidate's validation loss, one selection on it and one evaluation of the winner per run; prompting methods
    train nothing. Without the search no job measures a validation loss (test_dry_run_lists_exactly...)."""
    out = snakemake(workdir, "-n", configfiles=("config/smoke.yaml", "config/tuning.yaml"))
    trained = len(TASKS) * len(set(METHODS) - {"zero-shot", "few-shot"}) * len(SEEDS)
    counts = job_counts(out)
    assert (counts["finetune_candidate"], counts["select_lr"], counts["evaluate_tuned"]) == (
        3 * trained,
        trained,
        trained,
    )
    assert (counts["validation_loss"], counts["validation_loss_candidate"]) == (trained, 3 * trained)
    assert counts["finetune"] == counts["evaluate"] == runs()  # the paper defaults stay
    assert "qa/lora/seed0/tuning/lr_x0.333/train.json" in out and "qa/lora/seed0/tuning/lr_x9/train.json" in out
    select = out.split("rule select_lr:")[1].split("rule ")[0]
    assert "test.jsonl" not in select and "lm_eval.json" not in select and "val_loss.json" in select


def test_the_plain_command_finds_the_profile_and_goes_offline(workdir):
    """`snakemake --cores all` as typed in a bare shell: Snakemake picks up profiles/default (rerun-incomplete,
    ...) and the workflow sets the offline switches itself; a hub profile stays online."""
    cmd = [str(Path(sys.executable).parent / "snakemake"), "-n", "--cores", "all", "--configfile", "config/smoke.yaml"]
    res = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=bare_shell())
    assert res.returncode == 0, res.stderr[-4000:]
    assert "workflow specific profile profiles/default" in res.stderr
    assert "offline: HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1" in res.stderr
    hub = subprocess.run(
        [*cmd[:-1], "config/paper-lora-e2e.yaml"], cwd=workdir, capture_output=True, text=True, env=bare_shell()
    )
    assert hub.returncode == 0 and "offline:" not in hub.stderr, hub.stderr[-4000:]


def test_costs_lists_the_cost_measurements_the_dag_runs(workdir):
    (workdir / "config/no-costs.yaml").write_text("costs: [task_switch]\n")
    counts = job_counts(snakemake(workdir, "-n", configfiles=("config/smoke.yaml", "config/no-costs.yaml")))
    assert counts["task_switch"] == 1 and "paper_scale" not in counts and "latency_overhead" not in counts


def report_rows(md, tasks=TASKS):
    """{(task, method): [cells]} from report.md's per-task tables (the sections named after a task)."""
    rows, task = {}, None
    for line in md.splitlines():
        if line.startswith("## "):
            task = line[3:].strip()
        elif task in tasks and line.startswith("| ") and not line.startswith("| method"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[(task, cells[0])] = cells[1:]
    return rows


def test_smoke_run_reaches_the_report(workdir):
    worker_logs = set((workdir / ".snakemake/peftbench-worker").glob("*.log"))
    snakemake(workdir)
    md = (workdir / "reports/smoke/report.md").read_text()
    rows = report_rows(md)
    assert set(rows) == {(t, m) for t in TASKS for m in METHODS}
    flags = r"( seeds \d+%| exact| provisional| fragile| unstable \(seeds -?[\d.]+–-?[\d.]+\))*"  # the cell's flags
    number = re.compile(
        r"^([\d,.]+( ± [\d.]+)?(%|M| B| KB| MB| GB)?"  # a number, mean ± std
        r"|-?[\d.]+ \[-?[\d.]+, -?[\d.]+\]"
        + flags  # a score [95% interval]
        + r"|[+-][\d.]+ \[[+-][\d.]+, [+-][\d.]+\] (better|worse|≈)"
        + flags  # a paired difference
        + r"|--)$"
    )
    interval = re.compile(r"^-?[\d.]+ \[-?[\d.]+, -?[\d.]+\]" + flags + "$")
    for key, cells in rows.items():
        assert all(number.match(c) for c in cells), f"non-numeric cell in {key}: {cells}"
        assert interval.match(cells[0]), f"main score without its interval in {key}: {cells[0]}"
    assert "## Claims and verdicts" in md and all(c["id"] in md for c in claims.load())
    html = (workdir / "reports/smoke/report.html").read_text()
    assert html.count("<table") >= len(TASKS) and "</html>" in html  # + the papers' tables

    summary = pd.read_csv(workdir / "results/smoke/summary.csv")
    assert len(summary) == runs() and set(summary.seed) == set(SEEDS)
    assert (summary[summary.method == "zero-shot"].seed == SEEDS[0]).all()  # seed-free: one run
    assert summary[["main_score", "trainable_params", "storage_bytes", "latency_ms_per_token"]].notna().all().all()
    assert (summary.latency_ms_per_token > 0).all()
    full = summary[summary.method == "full"]
    assert (full.trainable_params == full.base_params).all() and (full.trainable_percent == 100).all()
    assert (summary[summary.method == "zero-shot"].trainable_params == 0).all()
    untrained = summary[summary.method.isin(["zero-shot", "few-shot"])]
    assert (untrained.forgetting_delta == 0).all() and (
        untrained.forgetting_loss == untrained.forgetting_base_loss
    ).all()
    assert summary.forgetting_loss.notna().all() and (summary[summary.trainable_params > 0].train_flops > 0).all()
    zero = io.read_json(workdir / "results/smoke/tiny-random-llama/qa/zero-shot/seed0/lm_eval.json")["peftbench"]
    few = io.read_jsonl(workdir / "results/smoke/tiny-random-llama/qa/few-shot/seed0/samples.jsonl")
    assert zero["chat_template"] and zero["num_fewshot"] == 0
    assert all(r["prompt"].startswith("<|im_start|>") and r["prompt"].count("Answer:") == 4 for r in few)  # 3 demos

    run = workdir / "results/smoke/tiny-random-llama/qa/lora/seed0"
    lm = io.read_json(run / "lm_eval.json")
    assert {"results", "configs", "versions", "n-samples"} <= set(lm)  # lm-eval's own layout
    assert set(lm["results"]["peftbench_qa"]) >= {"exact_match,none", "f1,none"}
    rel = "results/smoke/tiny-random-llama/qa/lora/seed0"  # lm_eval.json says what it scored
    assert (lm["config"]["model"], lm["config"]["model_args"], lm["config"]["peftbench_method"]) == (
        "peftbench",
        f"run={rel}",
        "lora",
    )
    assert {p.name for p in (run / "adapter").iterdir()} >= {"adapter_config.json", "adapter_model.safetensors"}
    train = io.read_json(run / "train.json")
    assert len(train["loss_curve"]) == 3 and train["tokens_per_s"] > 0 and train["peak_memory_bytes"] > 0
    assert {"versions", "git", "config_hash", "seed", "hardware", "files"} <= set(train["provenance"])
    # the evaluated state is the trained one: its sha256 is recorded by fine-tuning and by the evaluation
    assert (
        train["task_state_sha256"]
        == identity.sha256_file(run / "task_state.safetensors")
        == lm["peftbench"]["task_state_sha256"]
    )
    assert train["reload_check"]["max_abs_logit_diff"] <= train["reload_check"]["tolerance"]
    assert io.read_json(workdir / "results/smoke/data/qa/checks.json")["counts"] == {
        "train": 24,
        "validation": 4,
        "test": 6,
    }
    lora = summary[(summary.task == "qa") & (summary.method == "lora")]
    assert (lora.storage_bytes == train["shipped_bytes"]).all()  # storage: the adapter folder's two files
    # the jobs ran forked from the warm worker (its log: one line per job forked, one per job ended, all 0)
    (log,) = set((workdir / ".snakemake/peftbench-worker").glob("*.log")) - worker_logs
    ended = re.findall(r"pid \d+: tmp\w+\.(\w+)\.py exited (-?\d+)", log.read_text())
    assert {s for s, _ in ended} >= {"finetune", "evaluate", "base_model", "report"} and {c for _, c in ended} == {"0"}
    assert len(ended) == runs() * 2 + 10  # every script: job (paper_scale's is shell:)


def test_after_a_complete_run_there_is_nothing_to_do(workdir):
    assert "Nothing to be done" in snakemake(workdir, "-n")


def test_a_python_tag_in_a_profile_is_named_with_its_file_and_line(workdir):
    """Issue 27: Snakemake's own YAML loader builds Python objects from tags (`!!python/name:os.system` became a
    function in the config); each profile is read as plain data first, and a tag names its file and line."""
    (workdir / "config/tagged.yaml").write_text("training:\n  steps: !!python/name:os.system\n")
    with pytest.raises(AssertionError) as failed:
        snakemake(workdir, "-n", configfiles=("config/smoke.yaml", "config/tagged.yaml"))
    assert "config/tagged.yaml:2: not valid YAML (could not determine a constructor for the tag" in str(failed.value)
    (workdir / "config/tagged.yaml").unlink()


def test_make_report_refuses_runs_the_current_profile_would_retrain(workdir):
    """Issue 26: `make report` reads results/ without Snakemake; after a profile edit it reported the old runs
    under the new profile. A run whose stored config hash is not the one its job would compute now is refused
    by name; the unchanged profile refuses nothing."""

    def make_report(*overlays):
        args = [a for o in ("config/smoke.yaml", *overlays) for a in ("--configfile", o)]
        cmd = [sys.executable, "-m", "peftbench.report", *args, "--reports", "reports/stale-check"]
        res = subprocess.run(
            cmd, cwd=workdir, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
        assert res.returncode == 0, res.stderr[-3000:]
        return (workdir / "reports/stale-check/report.md").read_text()

    assert "stale:" not in make_report()
    (workdir / "config/more-steps.yaml").write_text(yaml.safe_dump({"training": {"steps": 4}}))
    md = make_report("config/more-steps.yaml")
    stale = [line for line in md.splitlines() if "stale: trained under another profile" in line]
    assert any("/lora/seed0" in line or "lora / seed0" in line for line in stale), md[-3000:]
    assert not any("zero-shot" in line for line in stale)  # trains nothing: steps do not reach it
    shutil.rmtree(workdir / "reports/stale-check")


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


def test_tracking_logs_every_run_to_mlflow_once(workdir):
    """Issue 29, item 6: one profile switch (tracking.mlflow) adds the track job after the report, and nothing else;
    MLflow's own client then reads back, per task and method, the seed mean with its interval (intervals.csv), and
    per seed a nested run with its settings, its loss at every step and its scores (summary.csv, train.json). A
    second track job replaces its runs rather than adding to them."""
    from mlflow.tracking import MlflowClient

    (workdir / "config/tracking.yaml").write_text("tracking: {mlflow: 'sqlite:///results/smoke/mlflow.db'}\n")
    profiles = ("config/smoke.yaml", "config/tracking.yaml")
    assert job_counts(snakemake(workdir, "-n", configfiles=profiles)) == {"track": 1, "all": 1}
    snakemake(workdir, configfiles=profiles)
    snakemake(workdir, "--forcerun", "track", configfiles=profiles)
    client = MlflowClient(tracking_uri=f"sqlite:///{workdir}/results/smoke/mlflow.db")
    (experiment,) = [e for e in client.search_experiments() if e.name == "peftbench"]
    logged = client.search_runs([experiment.experiment_id], max_results=1000)
    summary = pd.read_csv(workdir / "results/smoke/summary.csv")
    intervals = pd.read_csv(workdir / "reports/smoke/tables/intervals.csv")
    pairs = intervals[["task", "method"]].drop_duplicates()  # one run per task and method, its metrics inside
    assert len(logged) == len(summary) + len(pairs)  # the second job replaced the first one's runs
    by_name = {r.info.run_name: r for r in logged}
    mean, seed0 = by_name["qa/lora"], by_name["qa/lora/seed0"]
    for _, row in intervals[(intervals.task == "qa") & (intervals.method == "lora")].iterrows():  # f1, exact_match
        got = [mean.data.metrics[k] for k in (row.metric, f"{row.metric}_ci_low", f"{row.metric}_ci_high")]
        assert got == pytest.approx([row.score, row.ci_low, row.ci_high])
    assert seed0.data.tags["mlflow.parentRunId"] == mean.info.run_id
    train = io.read_json(workdir / "results/smoke/tiny-random-llama/qa/lora/seed0/train.json")
    curve = sorted(client.get_metric_history(seed0.info.run_id, "train_loss"), key=lambda m: m.step)
    assert [m.step for m in curve] == list(range(len(train["loss_curve"])))
    assert [m.value for m in curve] == pytest.approx(train["loss_curve"])
    assert seed0.data.params["hp.r"] == str(train["hyperparameters"]["r"])
    assert seed0.data.params["training.learning_rate"] == str(train["training"]["learning_rate"])
    one = summary[(summary.task == "qa") & (summary.method == "lora") & (summary.seed == 0)].iloc[0]
    assert seed0.data.metrics["main_score"] == pytest.approx(one.main_score)
    assert seed0.data.metrics["trainable_params"] == one.trainable_params
    assert "Nothing to be done" in snakemake(workdir, "-n", configfiles=profiles)
    (workdir / "config/tracking.yaml").unlink()


def code_block(markdown, first_line):
    """The fenced block of a README whose first line is `first_line`: the docs are what the test runs."""
    blocks = re.findall(r"```\w*\n(.*?)```", markdown, re.S)
    found = [b for b in blocks if b.startswith(first_line + "\n")]
    assert len(found) == 1, f"no block starting with {first_line!r}"
    return found[0]


def test_a_new_method_and_a_new_task_go_from_cp_to_a_report(workdir):
    """The documented extension path, literally, in one smoke run with the cost rules: README.md's
    `lora_r16` (cp -r methods/lora, two edits), methods/README.md's VeRA example (a merged peft method
    without `switch`), README.md's "Add a task" (cp -r tasks/qa tasks/qa-local, its task.yaml, the
    user's own JSONL with several references, its lm_eval.yaml left as copied) and profile."""
    readme, methods_readme = (ROOT / "README.md").read_text(), (ROOT / "methods/README.md").read_text()
    before = pd.read_csv(workdir / "results/smoke/summary.csv").set_index(["task", "method"])
    new = workdir / "methods/lora_r16"
    shutil.copytree(workdir / "methods/lora", new)
    spec = yaml.safe_load((new / "method.yaml").read_text())
    spec["name"], spec["hyperparameters"]["r"] = "lora_r16", 16
    (new / "method.yaml").write_text(yaml.safe_dump(spec))
    shutil.copytree(workdir / "methods/lora", workdir / "methods/vera")
    for name in ("method.yaml", "method.py"):
        (workdir / "methods/vera" / name).write_text(code_block(methods_readme, f"# methods/vera/{name}"))

    assert job_counts(snakemake(workdir, "-n")) == {  # only their runs, and the tables that cover every method
        "finetune": 6,
        "evaluate": 6,
        "summary": 1,
        "report": 1,
        "all": 1,
        "latency_overhead": 1,
        "task_switch": 1,
    }

    task = workdir / "tasks/qa-local"
    shutil.copytree(workdir / "tasks/qa", task)
    (task / "task.yaml").write_text(
        code_block(readme, "# tasks/qa-local/task.yaml   (after: cp -r tasks/qa tasks/qa-local)")
    )
    data = {s: (workdir / f"results/smoke/data/qa/{s}.jsonl").read_text() for s in ("train", "validation", "test")}
    (task / "data").mkdir()
    (task / "data/train.jsonl").write_text(data["train"] + data["validation"])  # 28 records: 24 + 4
    (task / "data/test.jsonl").write_text(data["test"])
    (workdir / "config/my-task.yaml").write_text(
        code_block(readme, "# config/my-task.yaml: snakemake --cores all --configfile config/my-task.yaml")
    )
    profile = ("config/smoke.yaml", "config/my-task.yaml")
    snakemake(workdir, configfiles=profile)

    rows = report_rows((workdir / "reports/smoke/report.md").read_text(), ["qa-local"])
    assert set(rows) == {("qa-local", "lora_r16"), ("qa-local", "vera")}
    summary = pd.read_csv(workdir / "results/smoke/summary.csv").set_index(["task", "method"])
    assert (
        summary.loc[("qa-local", "lora_r16"), "trainable_params"] == 2 * before.loc[("qa", "lora"), "trainable_params"]
    )
    assert summary.loc[("qa-local", "vera"), "trainable_params"] == 2 * (64 + 16 + 32 + 16)  # L (d_out + r) per matrix
    lm = io.read_json(workdir / "results/smoke/tiny-random-llama/qa-local/vera/seed0/lm_eval.json")
    assert set(lm["results"]["peftbench_qa-local"]) >= {"exact_match,none", "f1,none"}
    switch = pd.read_csv(workdir / "results/smoke/costs/task_switch.csv").set_index("method")
    assert switch.loc["lora_r16", "switch_kind"] == "method" and switch.loc["vera", "switch_kind"] == "rebuild"
    assert switch.loc["vera", "check_max_abs_logit_diff"] < 1e-4 and "error" not in switch
    assert set(pd.read_csv(workdir / "results/smoke/costs/latency_overhead.csv").variant) >= {"lora_r16", "vera"}

    records = (task / "data/test.jsonl").read_text().splitlines()  # the user fixes one reference
    first = json.loads(records[0])
    first["answers"] = first["answers"] + ["another reference"]
    (task / "data/test.jsonl").write_text("\n".join([json.dumps(first), *records[1:]]) + "\n")
    assert job_counts(snakemake(workdir, "-n", configfiles=profile)) == {  # a dry run cannot know what the data
        "data": 1,  # checkpoint will write, so it lists the fine-tunes after it too
        "finetune": 2,
        "evaluate": 2,
        "summary": 1,
        "report": 1,
        "all": 1,
        "latency_overhead": 1,
        "task_switch": 1,
    }
    out = snakemake(workdir, configfiles=profile)  # the run: train.jsonl came out byte-identical, test.jsonl did not
    ran = set(re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):", out, re.M))
    # (task_switch, two steps below the checkpoint, keeps the reason Snakemake gave it before the checkpoint ran)
    assert {"data", "evaluate", "summary", "report"} <= ran and "finetune" not in ran, sorted(ran)
    assert "Nothing to be done" in snakemake(workdir, "-n", configfiles=profile)


def test_study_profile_is_three_seeds_of_every_method_and_task(workdir):
    n = runs([p.parent.name for p in (workdir / "methods").glob("*/method.yaml")], 3)  # with any a test added
    counts = job_counts(snakemake(workdir, "-n", configfiles=("config/study.yaml",)))
    assert counts["finetune"] == n and counts["evaluate"] == n and counts["report"] == 1
    trained = (
        3
        * len(TASKS)
        * sum(  # the lr search: a candidate per factor other than 1, of every method that trains
            yaml.safe_load(p.read_text()).get("training", {}).get("steps") != 0
            for p in (workdir / "methods").glob("*/method.yaml")
        )
    )
    others = len(yaml.safe_load((workdir / "config/study.yaml").read_text())["tuning"]["lr_factors"]) - 1
    assert others == 3 and counts["finetune_candidate"] == others * trained and counts["select_lr"] == trained


UNION_PROFILE = """\
results: results/union
reports: reports/union
methods: [zero-shot, lora, loreft]
costs: []
model: {dtype: bf16}          # bf16 weights end to end: stored, evaluated, summarised
precision: bf16
training: {epochs: 0.25}      # (24 + 24) records / batch 4 / 4 = 3 steps on the union
train_union: {name: both, tasks: [qa, summarization], seed: 5}
"""


def test_a_union_profile_trains_once_per_method_and_reports_every_member(workdir):
    """ReFT Table 1's setup on the smoke profile, through the real command line: qa and summarization train
    one model per method on their concatenated data, translation its own; every member's run folder links the
    union's state, is evaluated on its own test split and is a summary row naming the union."""
    (workdir / "config/union.yaml").write_text(UNION_PROFILE)
    profile = ("config/smoke.yaml", "config/union.yaml")
    counts = job_counts(snakemake(workdir, "-n", configfiles=profile))
    assert {r: counts.get(r) for r in ("union_data", "finetune_union", "union_member", "finetune", "evaluate")} == {
        "union_data": 1,
        "finetune_union": 3,  # one per method, not per member
        "union_member": 2 * 3,
        "finetune": 3,  # translation's own runs
        "evaluate": 3 * 3,
    }
    snakemake(workdir, configfiles=profile)
    results = workdir / "results/union"
    union_train = io.read_jsonl(results / "data/both/train.jsonl")
    assert sorted(r["id"] for r in union_train) == sorted(
        f"{t}/{r['id']}" for t in ("qa", "summarization") for r in io.read_jsonl(results / f"data/{t}/train.jsonl")
    )
    summary = pd.read_csv(results / "summary.csv").set_index(["task", "method"])
    assert len(summary) == 3 * 3
    for method in ("lora", "loreft"):
        union_run = results / "tiny-random-llama/both" / method / "seed0"
        trained = io.read_json(union_run / "train.json")
        assert trained["steps"] == len(trained["loss_curve"]) == 3
        assert trained["stored_dtypes"] == ["bfloat16"] and trained["weights_dtype"] == "bf16"
        assert trained["trained_on"] == {"union": "both", "tasks": ["qa", "summarization"]}
        for task in ("qa", "summarization"):
            run = results / "tiny-random-llama" / task / method / "seed0"
            assert (run / "task_state.safetensors").resolve() == (union_run / "task_state.safetensors").resolve()
            lm = io.read_json(run / "lm_eval.json")["peftbench"]
            assert lm["task_state_sha256"] == trained["task_state_sha256"], "the member evaluated the union's state"
            assert summary.loc[(task, method), "trained_on"] == "both"
            assert len(io.read_jsonl(run / "samples.jsonl")) == 6, "its own test split"
        assert pd.isna(summary.loc[("translation", method), "trained_on"])
    assert (results / "tiny-random-llama/translation/lora/seed0/task_state.safetensors").is_file()
    assert (workdir / "reports/union/report.md").is_file()
    assert "Nothing to be done" in snakemake(workdir, "-n", configfiles=profile), "the links date after the union"
