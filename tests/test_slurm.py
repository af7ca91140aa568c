"""SLURM for real: scripts/slurm_localhost.sh starts a single-node cluster on this machine (Debian's slurmctld,
slurmd and munge), and the smoke DAG, reduced to one task and two methods, runs through
snakemake-executor-plugin-slurm (profiles/slurm-localhost, a global profile on top of profiles/default) to the report: every base-model, data,
fine-tuning and evaluation job is an sbatch job (the cost measurements are left out, `costs: []`: the smoke DAG
in tests/test_workflow.py runs them). One fine-tuning job is cancelled by SLURM (scancel) while it
runs; Snakemake must see it fail and submit it again, and the report must still come from complete runs.

Skipped only where SLURM cannot be installed (not root, or apt has no slurm packages)."""

import importlib.util
import os
import shutil
import subprocess
import sys
import time

import pandas as pd
import pytest

from peftbench.paths import ROOT

pytestmark = pytest.mark.slow
SCRIPT = ROOT / "scripts" / "slurm_localhost.sh"
REDUCED = (
    "tasks: {summarization: null, translation: null}\nmethods: [zero-shot, lora]\ncosts: []\n"  # timings: test_workflow
)
VICTIM = "rule_finetune_wildcards_qa_lora_0"  # sbatch --comment of the job we cancel


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("a SLURM cluster on localhost needs root (apt-get, /etc/slurm, slurmctld/slurmd)")
    res = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        if shutil.which("slurmctld") is None or shutil.which("sbatch") is None:
            pytest.skip(f"SLURM is not installable here: {(res.stdout + res.stderr)[-600:]}")
        pytest.fail(f"scripts/slurm_localhost.sh failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    assert importlib.util.find_spec("snakemake_executor_plugin_slurm"), "pip install -r requirements.txt"
    return res.stdout


@pytest.fixture
def workdir(tmp_path):
    shutil.copy(ROOT / "Snakefile", tmp_path)
    for sub in ("profiles", "workflow", "config", "methods", "tasks", "peftbench"):
        shutil.copytree(ROOT / sub, tmp_path / sub, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "config" / "reduced.yaml").write_text(REDUCED)
    return tmp_path


def our_jobs(workdir):
    """{job id: (comment, state)} of this run's jobs, from squeue (finished ones stay listed: MinJobAge)."""
    out = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%k|%T|%Z"], capture_output=True, text=True, check=True
    ).stdout
    rows = [line.split("|") for line in out.splitlines() if line.count("|") == 3]
    return {i: (comment, state) for i, comment, state, wd in rows if wd == str(workdir)}


def test_smoke_dag_reaches_the_report_through_slurm_and_survives_a_killed_job(cluster, workdir):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--profile",
        "profiles/slurm-localhost",
        "--configfile",
        "config/smoke.yaml",
        "config/reduced.yaml",
    ]
    start = time.monotonic()
    log = open(workdir / "snakemake.log", "w")
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=env)
    cancelled, running_since = None, None
    while proc.poll() is None and time.monotonic() - start < 1200:  # a ceiling: a loaded machine is slow
        if cancelled is None:
            for job, (comment, state) in our_jobs(workdir).items():
                if comment == VICTIM and state == "RUNNING":
                    running_since = running_since or time.monotonic()
                    if time.monotonic() - running_since > 3:  # mid-run: its Python has started
                        subprocess.run(["scancel", job], check=True)
                        cancelled = job
        time.sleep(0.5)
    if proc.poll() is None:
        proc.kill()
    log.close()
    output = (workdir / "snakemake.log").read_text()
    assert proc.returncode == 0, f"snakemake through SLURM failed:\n{output[-6000:]}"
    assert "Using profiles profiles/slurm-localhost and workflow specific profile profiles/default" in output
    assert cancelled, f"never saw {VICTIM} running to cancel it:\n{output[-3000:]}"

    jobs = our_jobs(workdir)
    assert jobs[cancelled] == (VICTIM, "CANCELLED")
    assert f"SLURM-job '{cancelled}' failed, SLURM status is: 'CANCELLED'" in output
    victims = [j for j, (comment, _) in jobs.items() if comment == VICTIM]
    assert len(victims) == 2 and jobs[max(victims, key=int)][1] == "COMPLETED"  # submitted again, then done
    sbatched = {comment.split("_wildcards")[0] for comment, state in jobs.values() if state == "COMPLETED"}
    assert {"rule_base_model", "rule_data", "rule_finetune", "rule_evaluate"} <= sbatched

    summary = pd.read_csv(workdir / "results/smoke/summary.csv")
    assert sorted(summary.method) == ["lora", "zero-shot"] and set(summary.task) == {"qa"}
    assert summary[["main_score", "trainable_params", "latency_ms_per_token"]].notna().all().all()
    assert (workdir / "reports/smoke/report.md").is_file() and (workdir / "reports/smoke/report.html").is_file()
    print(f"SLURM run: {time.monotonic() - start:.0f} s, jobs {sorted(jobs, key=int)}")
