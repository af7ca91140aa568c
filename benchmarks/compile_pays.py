"""Does torch.compile pay for itself at the default budget? The shared loop's training step, eager vs compiled.

In one process, on fresh copies of one model with the method attached, on the default run's batches
(unpadded, as `training.unpadded` runs them: sequences of varying length, so the compiled step is built with
dynamic shapes, `torch.compile(model, dynamic=True)`):

    eager      peftbench.stages.train.train() as the DAG runs it;
    compiled   the same call on a model wrapped in torch.compile (inductor, the CPU's C++ compiler): its first
               step includes the compilation, later steps reuse it (a new length may recompile once).

Prints the seconds of each run, the compile cost (first compiled run - eager run) and the step-time saving once
compiled, so the break-even number of steps; and whether the losses agree (compile may reorder float math:
the tolerance is stated). A run at the default budget (12 steps) pays only if break-even < 12.

    python benchmarks/compile_pays.py                      # the default run's base model, LoRA, 12 steps
    python benchmarks/compile_pays.py --base tiny --steps 3
"""

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gemm_fraction import DEFAULT_BASE, load  # noqa: E402
from train_loop import records  # noqa: E402

from peftbench import config, methods  # noqa: E402
from peftbench.stages import train  # noqa: E402


def run(model, tok, recs, settings):
    t = time.perf_counter()
    stats = train.train(model, tok, recs, [], settings, 0)
    return time.perf_counter() - t, stats["loss_curve"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default=DEFAULT_BASE)
    ap.add_argument("--method", default="lora")
    ap.add_argument("--steps", type=int, default=12, help="the default profile's steps")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, tok, name = load(args.base, "cpu")
    spec = config.discover_methods()[args.method]
    settings = {**config.training_settings({"training": {}}, spec), "steps": args.steps, "batch_size": 4}
    recs = records()[: args.steps * 4]
    methods.seed_everything(0)
    attached = methods.load_module(spec["dir"]).attach(copy.deepcopy(model), spec["hyperparameters"])
    run(copy.deepcopy(attached), tok, recs, {**settings, "steps": 1})  # warm-up: allocator, kernels
    eager, compiled, first = [], [], []
    for _ in range(args.repeats):
        seconds, eager_losses = run(copy.deepcopy(attached), tok, recs, settings)
        eager.append(seconds)
        torch._dynamo.reset()  # every compiled run pays its compilation, as a DAG job (a new process) would
        m = copy.deepcopy(attached)
        m.forward = torch.compile(m.forward, dynamic=True)
        t = time.perf_counter()
        train.train(m, tok, recs[:4], [], {**settings, "steps": 1}, 0)  # the first step: compilation
        first.append(time.perf_counter() - t)
        seconds, compiled_losses = run(m, tok, recs, settings)
        compiled.append(seconds)
    e, c, f = statistics.median(eager), statistics.median(compiled), statistics.median(first)
    step_e, step_c = e / args.steps, c / args.steps
    compile_cost = f - step_e
    diff = max(abs(a - b) for a, b in zip(eager_losses, compiled_losses))
    print(
        f"{name}, {args.method}, {args.steps} steps x 4 (unpadded), {torch.get_num_threads()} thread(s), "
        f"median of {args.repeats}"
    )
    print(f"eager:    {e:.1f} s ({step_e:.2f} s/step)")
    print(
        f"compiled: first step {f:.1f} s (compilation ~{compile_cost:.1f} s), then {c:.1f} s for {args.steps} "
        f"steps ({step_c:.2f} s/step, eager / compiled = {step_e / step_c:.3f})"
    )
    saving = step_e - step_c
    if saving > 0:
        print(f"break-even after {compile_cost / saving:.0f} steps (the default run trains {args.steps})")
    else:
        print("compiled steps are not faster: compilation never pays")
    print(f"largest loss difference eager vs compiled over the steps: {diff:.2e}")


if __name__ == "__main__":
    main()
