"""scripts/gpu_check.sh, the GPU readiness check, run on the CPU (DEVICE=cpu) at the smoke profile's sizes with three
methods: every step passes and $OUT holds the report, the summary, the runs' JSON, the GEMM fraction and the
latency overhead. In a copy of the workflow, as tests/test_workflow.py (a few minutes: it runs the DAG)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from test_workflow import bare_shell

from peftbench.paths import ROOT

pytestmark = pytest.mark.slow
METHODS = ["full", "lora", "zero-shot"]


def test_gpu_check_runs_on_the_cpu_and_collects_its_outputs(tmp_path):
    work, out = tmp_path / "repo", tmp_path / "out"
    work.mkdir()
    shutil.copy(ROOT / "Snakefile", work)
    for sub in ("profiles", "workflow", "config", "methods", "tasks", "scripts", "benchmarks"):
        shutil.copytree(ROOT / sub, work / sub, ignore=shutil.ignore_patterns("__pycache__"))
    (work / "config/few.yaml").write_text(f"methods: {json.dumps(METHODS)}\n")
    env = {
        **bare_shell(),
        "DEVICE": "cpu",
        "PROFILE": "config/smoke.yaml config/few.yaml",
        "OUT": str(out),
        "VENV": str(Path(sys.executable).parent.parent),
        "CORES": "2",
        "DAG_S": "2400",
        "GEMM_ARGS": "--repeats 1 --steps 1 --new-tokens 2 --limit-n 512",
        "LATENCY_ARGS": "--tiny --settings 1x16 --repeats 2",
    }
    res = subprocess.run(["bash", str(work / "scripts/gpu_check.sh")], env=env, capture_output=True, text=True)
    steps = (out / "steps.tsv").read_text() if (out / "steps.tsv").is_file() else ""
    assert res.returncode == 0, f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}\n{steps}"
    assert [line.split("\t")[:2] for line in steps.splitlines()] == [
        [name, "0"] for name in ("dag", "report", "gemm_fraction", "latency_overhead")
    ]
    assert (out / "device.yaml").read_text() == "device: cpu\nprecision: fp32\n"
    assert (out / "report/report.md").is_file() and (out / "report/report.html").is_file()

    summary = pd.read_csv(out / "results/summary.csv")
    assert len(summary) == 3 * len(METHODS) and (summary[summary.method != "zero-shot"].train_gflop_per_s > 0).all()
    train = json.loads((out / "results/tiny-random-llama/qa/lora/seed0/train.json").read_text())
    assert train["device"] == "cpu" and train["tokens_per_s"] > 0 and train["gflop_per_s"] > 0

    gemm = json.loads((out / "gemm_fraction.json").read_text())
    measures = [r["measure"] for r in gemm["rows"]]
    assert measures[0] == "gemm 512² (the limit)" and {"train full", "train lora", "prefill", "decode"} <= set(measures)
    assert all(r["flop_per_s"] > 0 and r["tokens_per_s"] > 0 for r in gemm["rows"])
    assert gemm["setting"]["model"] == "tiny-random-llama" and gemm["setting"]["device"] == "cpu"
    latency = pd.read_csv(out / "latency_overhead.csv")
    assert {"base", "lora", "lora-merged"} <= set(latency.variant)
