"""Task switching: "weights in adapter layers can be swapped out as needed for different tasks" — how long a
process that has the base model loaded takes to move from one task to another, per method.

Per method: the base model is loaded and set up for task A (`load`), once. Then, timed, it is switched to
task B and back, `repeats` times: read the other task's stored state (safetensors; after one untimed round
trip the files are in the page cache) and `peftbench.methods.switch` it in (copy the tensors in place; merged
LoRA subtracts B A and adds B' A', Hu et al. 2021 Sec. 4.1; merged (IA)^3 rescales by l' / l). The
reference is full fine-tuning, whose switch reads and copies a whole model checkpoint. Also timed: a cold
start (load the base folder, then `load` the task state), what a process without the loaded base pays.
Every switched model is checked against a model loaded directly with the same task's state (max |logit
difference|: 0 for a copy, rounding for a merged method's subtract-and-add).

How each method switches (column `switch_kind`): `method` (its method.py defines `switch`), `copy` (the stored
tensors copied in by name, peftbench.methods.copy_task_state), or `rebuild` when neither applies (e.g. a new peft
method merged by `load`, without `switch`: its adapter keys are gone from the loaded model). A rebuild is what
such a process has to do: drop the model, copy the base weights it kept in memory, `load` the new state; that
is what is timed, and `switch_note` says why the copy did not apply. A method that fails is one row with
its `error`, and the others are still measured."""

import copy
import statistics
import time
import traceback

import torch

from peftbench import io, methods
from peftbench.model import base_model


def _ms(since):
    return 1000 * (time.perf_counter() - since)


@torch.no_grad()
def _logits(model, ids):
    return model(input_ids=ids).logits.float()


def measure(base_dir, spec, path_a, path_b, repeats=10, cold_repeats=2):
    """One row: the method's switch time between two stored task states, its cold-start time, the check."""
    module, hp = methods.load_module(spec["dir"]), spec["hyperparameters"]
    model, tok = base_model.load(base_dir)
    ids = tok("The capital of France is", return_tensors="pt").input_ids
    own = callable(getattr(module, "switch", None))
    pristine = None if own else copy.deepcopy(model)  # `load` may write the base weights (a merge)
    current = methods.load_state(path_a)
    model = module.load(model, current, hp)
    note = None if own else methods.copy_mismatch(model, methods.load_state(path_b))
    kind = "method" if own else "rebuild" if note else "copy"
    if kind != "rebuild":
        pristine = None

    held = [model]

    def switch(new):
        if kind == "rebuild":
            held[0] = None  # the old task's model goes first: one model in memory
            held[0] = module.load(copy.deepcopy(pristine), new, hp)
        else:
            held[0] = methods.switch(module, held[0], current, new, hp)

    del model
    paths, at = (path_b, path_a), path_a
    for path in paths:  # untimed round trip: page cache, allocator
        new = methods.load_state(path)
        switch(new)
        current, at = new, path
    switch_ms = []
    for i in range(repeats):
        path = paths[i % 2]
        t = time.perf_counter()
        new = methods.load_state(path)
        switch(new)
        switch_ms.append(_ms(t))
        current, at = new, path
    switched = _logits(held[0], ids)
    held[0] = pristine = None
    cold_ms = []
    for _ in range(cold_repeats):
        t = time.perf_counter()
        fresh, _ = base_model.load(base_dir)
        fresh = module.load(fresh, methods.load_state(at), hp)
        cold_ms.append(_ms(t))
    diff = (switched - _logits(fresh, ids)).abs().max().item()
    return {
        "method": spec["name"],
        "switch_kind": kind,
        "state_bytes": methods.state_bytes(current),
        "switch_ms": round(statistics.median(switch_ms), 3),
        "switch_ms_min": round(min(switch_ms), 3),
        "switches": repeats,
        "cold_start_ms": round(statistics.median(cold_ms), 1),
        "check_max_abs_logit_diff": diff,
        "threads": torch.get_num_threads(),
        "switch_note": f"rebuilt from the base: {note}"[:300] if note else "",
    }


def run(base_dir, specs, states, tasks, out_csv, repeats=10, cold_repeats=2):
    """specs: {method: spec}; states: {method: (task A's state path, task B's)}. One CSV row per method;
    `vs_full` = full fine-tuning's switch time / this method's (how many times faster than swapping checkpoints)."""
    from pathlib import Path

    import pandas as pd

    from peftbench import identity

    for name, paths in states.items():  # the stored states are the trained ones (checked once, untimed)
        for path in paths:
            identity.check_state(
                path,
                io.read_json(Path(path).parent / "train.json").get("task_state_sha256"),
                "the task-switch measurement",
            )
    rows = []
    for name, spec in specs.items():
        try:
            row = measure(base_dir, spec, *states[name], repeats, cold_repeats)
        except Exception as e:  # one broken method does not sink the table (or the report)
            traceback.print_exc()
            row = {"method": spec["name"], "error": f"{type(e).__name__}: {e}"[:300]}
        rows.append({"task_a": tasks[0], "task_b": tasks[1], **row})
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    full = df.loc[df.method == "full"].get("switch_ms", pd.Series(dtype=float)).dropna()
    df["vs_full"] = (float(full.iloc[0]) / df.switch_ms).round(1) if len(full) else float("nan")
    with io.atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False)
    return df


def main(argv=None):
    """python -m peftbench.costs.task_switch: the rule's measurement on an existing run's stored task states."""
    import argparse
    from pathlib import Path

    from peftbench import config

    ap = argparse.ArgumentParser(description="Time to switch a loaded model between two tasks, per method.")
    ap.add_argument("--run", default="results/smollm2-135m-instruct", help="results/<model> of a finished run")
    ap.add_argument("--tasks", nargs=2, default=["summarization", "translation"])
    ap.add_argument("--methods", nargs="*", help="default: every method with both tasks' states")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--cold-repeats", type=int, default=2)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--csv", required=True)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    run_dir = Path(args.run)
    specs = config.discover_methods()
    paths = {m: [run_dir / t / m / f"seed{args.seed}" / "task_state.safetensors" for t in args.tasks] for m in specs}
    names = args.methods or [m for m, ps in paths.items() if all(p.is_file() for p in ps)]
    df = run(
        run_dir / "base_model",
        {m: specs[m] for m in names},
        {m: paths[m] for m in names},
        args.tasks,
        args.csv,
        args.repeats,
        args.cold_repeats,
    )
    print(df.to_string(index=False))


if __name__ == "__main__":
    main()
