"""Benchmarks (pytest-benchmark), outside the CI suite: `pytest` collects tests/ only (pyproject testpaths).

.venv/bin/python -m pytest benchmarks -s                       # GPT-2 medium at 1x128, tiny train loop
PEFTBENCH_BENCH_SETTINGS=1x128,16x256 .venv/bin/python -m pytest benchmarks/test_bench_latency.py -s
PEFTBENCH_BENCH_TINY=1 ...                                     # tiny shapes: the plumbing in seconds
PEFTBENCH_BENCH_TRAIN_SIZE=smollm2 ...                         # SmolLM2-135M-shaped train loop (minutes)
PEFTBENCH_BENCH_THREADS=1 PEFTBENCH_BENCH_CLOCK=cpu ...        # on a shared machine: CPU time, one thread
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/train_loop.py

import torch  # noqa: E402

if os.environ.get("PEFTBENCH_BENCH_THREADS"):
    torch.set_num_threads(int(os.environ["PEFTBENCH_BENCH_THREADS"]))

CLOCK = os.environ.get("PEFTBENCH_BENCH_CLOCK", "wall")
ROUNDS = int(os.environ.get("PEFTBENCH_BENCH_ROUNDS", "5"))
