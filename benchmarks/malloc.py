"""A fine-tuning job with glibc's default allocator vs with peftbench.malloc.keep_freed_memory(), each arm a fresh
process (mallopt is process state), alternated A B B A: wall time, kernel (sys) time and peak RSS per arm, the
medians' ratio, and whether both arms stored the same task state, byte for byte.

    python benchmarks/malloc.py --method full --task translation --steps 6 [--rounds 1]

Needs a finished default run's base model and data (results/), as `snakemake --cores all` leaves them.
"""

import argparse
import hashlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, resource, sys, time
from pathlib import Path
from peftbench import config, malloc
from peftbench.stages import pipeline
arm, method, task, steps, results, out = sys.argv[1:]
applied = malloc.keep_freed_memory() if arm == "keep" else False
cfg = config.load_profile(config.CONFIG / "config.yaml")
cfg["training"].update(steps=int(steps), checkpoint_every=0)
spec = config.profile_methods(cfg)[method]
model_dir = Path(results) / cfg["model"]["name"]
start = time.perf_counter()
pipeline.finetune(cfg, model_dir / "base_model", task, spec, 0, Path(results) / "data" / task,
                  Path(out) / "task_state.safetensors", Path(out) / "train.json", 1)
rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
print(json.dumps({"wall": time.perf_counter() - start, "applied": applied, "rss_gb": rss_gb}))
"""


def run_arm(arm, args, out):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, arm, args.method, args.task, str(args.steps), args.results, out],
        capture_output=True,
        text=True,
        env={"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **__import__("os").environ},
    )
    if proc.returncode:
        sys.exit(proc.stderr[-3000:])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    state = hashlib.sha256((Path(out) / "task_state.safetensors").read_bytes()).hexdigest()
    return {**got, "sys": after.ru_stime - before.ru_stime, "state": state}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", default="full")
    ap.add_argument("--task", default="translation")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=1, help="rounds of A B B A")
    ap.add_argument("--results", default="results")
    args = ap.parse_args()
    runs = {"default": [], "keep": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for i, arm in enumerate(("default", "keep", "keep", "default")):
                out = Path(tmp) / f"{arm}{r}{i}"
                out.mkdir()
                runs[arm].append(run_arm(arm, args, str(out)))
                print(
                    arm,
                    {k: (round(v, 2) if isinstance(v, float) else v) for k, v in runs[arm][-1].items() if k != "state"},
                )
    med = {arm: {k: statistics.median(x[k] for x in rs) for k in ("wall", "sys")} for arm, rs in runs.items()}
    same = len({x["state"] for rs in runs.values() for x in rs}) == 1
    print(
        f"{args.task}/{args.method}, {args.steps} steps: wall {med['default']['wall']:.1f} s -> {med['keep']['wall']:.1f} s "
        f"({med['default']['wall'] / med['keep']['wall']:.2f}x), kernel time {med['default']['sys']:.1f} s -> "
        f"{med['keep']['sys']:.1f} s (medians of {2 * args.rounds}); peak RSS "
        f"{max(x['rss_gb'] for x in runs['default']):.2f} -> {max(x['rss_gb'] for x in runs['keep']):.2f} GiB; "
        f"task states identical: {same}"
    )


if __name__ == "__main__":
    main()
