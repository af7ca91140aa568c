"""One fine-tuning job started fresh (a new interpreter: its own imports) vs forked from the warm worker
(peftbench/warm_worker.py), alternated A B B A in one run: job wall time, the training loop's time from its
train.json, and the rest (the job's fixed cost), medians and the ratio.

    python benchmarks/warm_start.py --base results/smollm2-135m-instruct/base_model --data results/data \
        [--method zero-shot lora] [--task translation] [--rounds 2]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JOB = """
from peftbench import warm_worker
warm_worker.delegate()
import sys
from peftbench import config
from peftbench.stages import pipeline
base, data, method, task, out = sys.argv[1:6]
cfg = config.load_profile(config.CONFIG / "config.yaml")
pipeline.finetune(cfg, base, task, config.discover_methods()[method], 0, f"{data}/{task}",
                  f"{out}/task_state.safetensors", f"{out}/train.json", 1)
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="a base model folder (the default run's base_model)")
    ap.add_argument("--data", required=True, help="the folder of the task data folders (results/data)")
    ap.add_argument("--method", nargs="+", default=["zero-shot", "lora"])
    ap.add_argument("--task", default="translation")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of A B B A")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="warm-start-"))
    (tmp / "job.py").write_text(JOB)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("PEFTBENCH_WORKER", None)
    sock = tmp / "worker.sock"
    worker = subprocess.Popen(
        [sys.executable, "-m", "peftbench.warm_worker", str(sock), str(os.getpid())],
        env=env,
        stdout=open(tmp / "worker.log", "w"),
        stderr=subprocess.STDOUT,
    )
    while not sock.exists():
        time.sleep(0.05)
    time.sleep(8)  # its imports done: the warm arm times a fork, not the worker's start
    arms = {"fresh": env, "warm": {**env, "PEFTBENCH_WORKER": str(sock)}}
    times = {(m, a): [] for m in args.method for a in arms}
    try:
        for _ in range(args.rounds):
            for method in args.method:
                for arm in ("fresh", "warm", "warm", "fresh"):
                    out = tmp / arm / method
                    out.mkdir(parents=True, exist_ok=True)
                    began = time.perf_counter()
                    cmd = [sys.executable, str(tmp / "job.py"), args.base, args.data, method, args.task, str(out)]
                    subprocess.run(cmd, env=arms[arm], check=True, capture_output=True)
                    wall = time.perf_counter() - began
                    loop = json.loads((out / "train.json").read_text())["wall_time_s"]
                    times[method, arm].append((wall, loop))
    finally:
        worker.terminate()
    print(f"{args.task}, one thread, {args.rounds} round(s) of A B B A; seconds, medians")
    print(f"{'method':<12}{'arm':<7}{'job':>8}{'training':>10}{'fixed':>8}")
    for method in args.method:
        med = {}
        for arm in arms:
            walls, loops = zip(*times[method, arm], strict=True)
            med[arm] = statistics.median(w - x for w, x in times[method, arm])
            print(f"{method:<12}{arm:<7}{statistics.median(walls):8.2f}{statistics.median(loops):10.2f}{med[arm]:8.2f}")
        print(f"{method:<12}fixed cost fresh / warm: {med['fresh'] / med['warm']:.2f}x")


if __name__ == "__main__":
    main()
