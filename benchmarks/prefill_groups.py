"""Does grouped prefill pay? lm-eval's generation of a task's whole test split, prefilled in one padded forward
(evaluation.prefill_tokens 0, lm-eval's own way) vs in length-ordered groups of about --tokens positions
(peftbench.stages.evaluate.grouped_prefill),
side by side in one process on one loaded model, the two arms alternated (A B B A ...).

Prints, per task: the prompts' real token count and what each arm's prefill computes (padding included), the
median wall time of each arm and their ratio, and whether every generated output is the same.

    python benchmarks/prefill_groups.py                        # the default run's base model and test splits
    python benchmarks/prefill_groups.py --tasks qa --tokens 512 --rounds 3
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gemm_fraction import DEFAULT_BASE, load  # noqa: E402

from peftbench import config, io  # noqa: E402
from peftbench.stages import evaluate  # noqa: E402


def padding(tok, test_file, batch, tokens):
    """(real prompt tokens, positions one left-padded forward per batch computes, positions the groups compute)."""
    lengths = sorted(
        (len(tok(r["prompt"], add_special_tokens=False).input_ids) for r in io.read_jsonl(test_file)), reverse=True
    )
    padded = sum(max(lengths[i : i + batch]) * len(lengths[i : i + batch]) for i in range(0, len(lengths), batch))
    grouped, i = 0, 0
    while i < len(lengths):  # grouped_prefill's groups: rows = tokens // the group's longest
        n = max(1, tokens // lengths[i])
        grouped, i = grouped + lengths[i] * len(lengths[i : i + n]), i + n
    return sum(lengths), padded, grouped


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default=DEFAULT_BASE)
    ap.add_argument("--data", default="results/data", help="folder of <task>/test.jsonl (the default run's)")
    ap.add_argument("--tasks", nargs="+", default=["summarization", "qa", "translation"])
    ap.add_argument("--batch", type=int, default=64, help="lm-eval's batch size (the default profile's)")
    ap.add_argument("--tokens", type=int, default=1024, help="positions per prefill group (evaluation.prefill_tokens)")
    ap.add_argument("--rounds", type=int, default=1, help="A B B A pairs per task")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the default profile's jobs run 1 each)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, tok, label = load(args.base, "cpu")
    print(
        f"{label}, {torch.get_num_threads()} thread(s), lm-eval batch {args.batch}, groups of ~{args.tokens} positions"
    )
    for task in args.tasks:
        test = Path(args.data) / task / "test.jsonl"
        real, padded, grouped_tokens = padding(tok, test, args.batch, args.tokens)
        times, outputs = {0: [], args.tokens: []}, {}
        for _ in range(args.rounds):
            for group in (0, args.tokens, args.tokens, 0):
                t = time.perf_counter()
                _, samples = evaluate.run(
                    model, tok, config.load_task(task)["dir"], test, batch_size=args.batch, prefill_tokens=group
                )
                times[group].append(time.perf_counter() - t)
                outputs.setdefault(group, [s["filtered_resps"] for s in samples[evaluate.task_name(task)]])
        whole, grouped = statistics.median(times[0]), statistics.median(times[args.tokens])
        print(
            f"{task}: prompts {real} tokens; one padded forward computes {padded} ({1 - real / padded:.0%} padding), "
            f"the groups {grouped_tokens} ({1 - real / grouped_tokens:.0%}); {whole:.1f} s vs {grouped:.1f} s "
            f"(median of {len(times[0])}): {whole / grouped:.2f}x; outputs identical: {outputs[0] == outputs[args.tokens]}"
        )


if __name__ == "__main__":
    main()
