"""Faults through the real `snakemake` command: a SIGKILLed run resumes, and ends exactly where an
uninterrupted rerun of the same config ends (so two runs of one config give identical rows); a failing
method does not stop the others under --keep-going and never reaches summary.csv.

One task (qa), one method, no cost measurements, on the tiny model: each run is a handful of jobs."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml
from test_workflow import workdir  # noqa: F401  (a copy of the workflow to run in)

from peftbench import io

pytestmark = pytest.mark.slow
RUN = "tiny-random-llama/qa/lora/seed0"
# Measurements, not results: they differ between any two runs on a shared machine.
TIMINGS = [
    "train_wall_s",
    "tokens_per_s",
    "train_gflop_per_s",
    "step_time_s",
    "peak_memory_bytes",
    "latency_ms_per_token",
    "eval_wall_s",
]


@pytest.fixture(scope="module")
def faults(workdir):  # noqa: F811
    """The smoke profile cut to qa, with a longer run (40 steps, a checkpoint every 5) to kill."""
    smoke = yaml.safe_load((workdir / "config/smoke.yaml").read_text())
    smoke.update(
        tasks={"qa": smoke["tasks"]["qa"]},
        methods=["lora"],
        costs=[],
        training={**smoke["training"], "steps": 40, "checkpoint_every": 5},
    )
    (workdir / "config/config.yaml").write_text(yaml.safe_dump(smoke))  # no other task to merge in
    return workdir


def command(results, *args, target="summary.csv"):
    """Up to summary.csv (the report has its own tests)."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        *([f"{results}/{target}"] if target else []),
        "--cores",
        "2",
        *args,
        "--config",
        f"results={results}",
        f"reports=reports/{results}",
    ]


def run(workdir, results, *args, ok=True, target="summary.csv"):  # noqa: F811  (the imported fixture)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    res = subprocess.run(command(results, *args, target=target), cwd=workdir, capture_output=True, text=True, env=env)
    if ok:
        assert res.returncode == 0, f"snakemake failed:\n{res.stdout[-3000:]}\n{res.stderr[-6000:]}"
    return res


def deterministic(summary_csv):
    """The row without measurements and without the commit (which may move between two runs)."""
    return pd.read_csv(summary_csv).drop(columns=[*TIMINGS, "git_commit", "git_dirty"])


@pytest.fixture(scope="module")
def resumed(faults):
    """A run SIGKILLed (snakemake and its job, like a preempted node) after its first checkpoint, then resumed."""
    ckpts = faults / "results/killed" / RUN / "checkpoints"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        command("results/killed"),
        cwd=faults,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 900  # a ceiling, not a wait: a loaded machine starts the run slowly
    while not (ckpts.is_dir() and any(p.name.startswith("step") for p in ckpts.iterdir())):
        assert proc.poll() is None and time.time() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = sorted(p.name for p in ckpts.iterdir() if p.name.startswith("step"))[-1]
    assert not (ckpts.parent / "train.json").exists(), "killed too late: training had finished"
    assert not (ckpts.parent / "task_state.safetensors").exists()

    run(faults, "results/killed", "--unlock", target=None)
    run(faults, "results/killed", "--rerun-incomplete")
    return {
        "killed_at": int(killed_at.removeprefix("step")),
        "ckpts": ckpts,
        "train": io.read_json(ckpts.parent / "train.json"),
        "scores": io.read_json(ckpts.parent / "lm_eval.json")["peftbench"]["scores"],
        "summary": deterministic(faults / "results/killed/summary.csv"),
    }


def test_sigkill_mid_training_resumes_from_the_last_checkpoint(resumed):
    train = resumed["train"]
    assert train["resumed_from_step"] == resumed["killed_at"] >= 5
    assert len(train["loss_curve"]) == 40 and train["steps"] == 40
    assert not resumed["ckpts"].exists(), "checkpoints are removed once the outputs are complete"
    assert len(resumed["summary"]) == 1 and resumed["summary"].main_score.notna().all()


def test_an_uninterrupted_rerun_gives_identical_results(faults, resumed):
    """--forcerun finetune: the same config again, start to finish. Loss curve, validation loss, lm-eval
    scores and the summary row (minus measured times and the commit) equal the resumed run's."""
    run(faults, "results/killed", "--forcerun", "finetune")
    run_dir = faults / "results/killed" / RUN
    fresh = io.read_json(run_dir / "train.json")
    assert fresh["resumed_from_step"] is None
    assert fresh["loss_curve"] == resumed["train"]["loss_curve"]
    assert fresh["val_loss_after"] == resumed["train"]["val_loss_after"]
    assert io.read_json(run_dir / "lm_eval.json")["peftbench"]["scores"] == resumed["scores"]
    pd.testing.assert_frame_equal(deterministic(faults / "results/killed/summary.csv"), resumed["summary"])


def test_a_failing_method_does_not_stop_the_others(faults):
    """--keep-going: lora completes beside a method whose attach raises; the regenerated report marks
    the failed cells with the error, and no failed job leaves an output behind."""
    broken = faults / "methods/broken"
    shutil.copytree(faults / "methods/zero-shot", broken)
    spec = yaml.safe_load((broken / "method.yaml").read_text())
    (broken / "method.yaml").write_text(yaml.safe_dump({**spec, "name": "broken"}))
    code = (broken / "method.py").read_text()
    (broken / "method.py").write_text(
        code.replace("def attach(model, hp):", "def attach(model, hp):\n    raise RuntimeError('broken on purpose')", 1)
    )
    (faults / "config/keep-going.yaml").write_text(
        yaml.safe_dump({"results": "results/kg", "reports": "reports/kg", "methods": ["lora", "broken"], "costs": []})
    )

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--keep-going", "--configfile", "config/keep-going.yaml"],
        cwd=faults,
        capture_output=True,
        text=True,
        env=env,
    )
    assert res.returncode != 0
    good, bad = faults / "results/kg" / RUN, faults / "results/kg" / RUN.replace("lora", "broken")
    assert (good / "lm_eval.json").is_file() and (good / "latency.json").is_file()
    assert not (bad / "train.json").exists() and not (bad / "task_state.safetensors").exists()
    assert not list(bad.glob(".*.tmp")), "a failed job left a temporary file"
    assert not (faults / "results/kg/summary.csv").exists(), "summary.csv must never hold a failed run"

    res = subprocess.run(
        [sys.executable, "-m", "peftbench.report", "--configfile", "config/keep-going.yaml"],
        cwd=faults,
        capture_output=True,
        text=True,
        env=env,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    md = (faults / "reports/kg/report.md").read_text()
    assert "qa / broken" in md and "finetune failed: RuntimeError: broken on purpose" in md
    assert "| lora |" in md
