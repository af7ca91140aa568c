"""lm-eval's generation of a finished run's test split, decoded with generate() (every row until the batch's last
answer ends) vs with peftbench.stages.greedy (a row leaves once its answer has ended), alternated A B B A in one
process on the same loaded model: the answers must be identical, and the medians' ratio is the speed-up.

    python benchmarks/early_exit.py results/smollm2-135m-instruct/summarization/lora/seed0 [--rounds 1]
"""

import argparse
import statistics
import time
from pathlib import Path

import torch

from peftbench import config, methods
from peftbench.model import assemble
from peftbench.stages import evaluate


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", nargs="+", help="run folders results/<model>/<task>/<method>/seed<s>")
    ap.add_argument("--rounds", type=int, default=1, help="rounds of A B B A")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = config.load_profile(config.CONFIG / "config.yaml")
    for run in map(Path, args.run):
        task_name, method = run.parent.parent.name, run.parent.name
        spec, task = config.discover_methods()[method], config.load_task(task_name)
        if not (spec.get("chunked_prefill") or spec.get("position_wise_decoding")):
            print(f"{run}: {method} is not position-wise when decoding: it always decodes with generate()")
            continue
        data = run.parents[3] / "data" / task_name
        model, tok, *_ = assemble.method_model(
            run.parents[2] / "base_model", spec, methods.load_state(run / "task_state.safetensors")
        )
        times, answers = {False: [], True: []}, {}
        for _ in range(args.rounds):
            for early in (False, True, True, False):
                start = time.perf_counter()
                _, samples = evaluate.run(
                    model,
                    tok,
                    task["dir"],
                    data / "test.jsonl",
                    batch_size=cfg["evaluation"]["batch_size"],
                    target_end=task.get("target_end", "newline"),
                    prompting=spec.get("prompting", {}),
                    train_file=data / "train.jsonl",
                    prefill_tokens=cfg["evaluation"]["prefill_tokens"] if spec.get("chunked_prefill") else 0,
                    position_wise=early,
                )
                times[early].append(time.perf_counter() - start)
                got = [s["filtered_resps"] for s in samples[evaluate.task_name(task_name)]]
                assert answers.setdefault(early, got) == got, "a rerun of the same arm changed its answers"
        same = answers[False] == answers[True]
        a, b = statistics.median(times[False]), statistics.median(times[True])
        print(
            f"{task_name}/{method}: generate() {a:.1f} s, early exit {b:.1f} s (medians of {len(times[True])}): "
            f"{a / b:.2f}x; answers identical: {same} ({len(answers[True])} examples)"
        )
        if not same:
            raise SystemExit(f"{run}: the early-exit decoding changed an answer")


if __name__ == "__main__":
    main()
