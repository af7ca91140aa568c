"""This machine's matrix-multiply rate, and how much of it the shared training loop and generation reach.

In one process, in this order (each a median over --repeats after a warm-up):
  gemm     torch.matmul at 2048 x 2048 x 2048 (the limit: every fraction is of this rate;
           --limit-n 8192 on a GPU, which 2048 does not fill) and at the base
           model's own shapes, d_model and d_ff read from its config: tokens x d x d (attention projections),
           tokens x d x d_ff (MLP) with tokens = one training batch's padded tokens, and batch x d x d_ff (a decode
           step: one token per sequence);
  train    peftbench.stages.train.train() itself (full fine-tuning and LoRA by default): tokens/s and GFLOP/s as
           train.json records them, trained (non-padding) tokens and (4N + 2N_trainable) x tokens over the loop;
           unpadded (the default) and padded ("(padded)": one forward per batch), repeats interleaved, and the
           ratio of their median loop times;
  prefill  generate() of one token at --gen-batch prompts (peftbench.stages.latency's greedy call): 2N x prompt tokens;
  decode   generate() of 1 + --new-tokens tokens minus the one-token call, per step: 2N x batch;
  where    (--where) torch.profiler over one unpadded training step per method: the share of the step's time in
           matrix multiplies (aten mm / addmm / bmm, their FLOPs counted by the profiler) and the rate those ran
           at; the rest (attention kernels, norms, activations, the loss over the vocabulary, AdamW) is time that
           no GEMM speed-up reaches, so share x rate bounds the loop's fraction of the limit.

FLOPs are peftbench.model.flops' estimates from parameter counts (its docstring says what they leave out).

    python benchmarks/gemm_fraction.py                        # the default run's base model, one thread (a DAG job's)
    python benchmarks/gemm_fraction.py --base tiny --repeats 1 --steps 1     # the tests' tiny random model: seconds
    python benchmarks/gemm_fraction.py --device cuda --precision bf16 --out gemm.json
"""

import argparse
import copy
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/train_loop.py

from train_loop import SIZES, records  # noqa: E402

from peftbench import config, io, methods  # noqa: E402
from peftbench.model import base_model, flops  # noqa: E402
from peftbench.stages import latency, train  # noqa: E402

DEFAULT_BASE = "results/smollm2-135m-instruct/base_model"  # what `make benchmark` writes first
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def median_s(fn, repeats, device, min_s=0.0):
    """Median seconds per call of fn over `repeats` after a warm-up call; a repeat calls fn as often as needed
    to last about min_s (short GEMMs), its time divided by the calls."""
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    calls = max(1, math.ceil(min_s / max(time.perf_counter() - t, 1e-9)))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        sync(device)
        times.append((time.perf_counter() - t) / calls)
    return statistics.median(times)


def load(base, device):
    """(model, tokenizer, label): a base model folder, or "tiny" for the tests' tiny random Llama."""
    if base == "tiny":
        tok = base_model.smollm2_tokenizer()
        tok.pad_token = tok.pad_token or tok.eos_token
        return base_model.tiny_random_llama(tok, SIZES["tiny"]).eval().to(device), tok, "tiny-random-llama"
    if not (Path(base) / "config.json").is_file():
        sys.exit(
            f"gemm_fraction: no base model folder at {base}. Build the default one with `make benchmark` (its first "
            f"job) or `.venv/bin/snakemake --cores 1 {DEFAULT_BASE}`, pass --base <folder>, or --base tiny for "
            "the tests' tiny random model"
        )
    model, tok = base_model.load(base)
    return model.to(device), tok, Path(base).parent.name


def dims(cfg):
    """(d_model, d_ff) of a Llama- or GPT-2-style config."""
    d = getattr(cfg, "hidden_size", None) or cfg.n_embd
    return d, getattr(cfg, "intermediate_size", None) or getattr(cfg, "n_inner", None) or 4 * d


def row(measure, shape, seconds, tokens, work):
    return {
        "measure": measure,
        "shape": shape,
        "median_s": seconds,
        "tokens_per_s": tokens / seconds,
        "flop_per_s": work / seconds,
    }


def gemm_rows(shapes, dtype, device, repeats):
    out = []
    for label, (m, k, n) in shapes:
        a, b = (torch.randn(*s, device=device, dtype=dtype) for s in ((m, k), (k, n)))
        out.append(
            row(f"gemm {label}", f"{m}x{k}x{n}", median_s(lambda: a @ b, repeats, device, 0.2), m, 2 * m * k * n)
        )
    return out


def train_rows(model, tok, recs, names, steps, batch_size, precision, repeats, variants=(True, False)):
    """train() on fresh copies of the model with each method attached; the rates train.json records, median.
    Each method unpadded (training.unpadded, the default) and padded (one forward per batch, the loop before it),
    their repeats interleaved so that both see the same machine."""
    out = []
    for name in names:
        spec = config.discover_methods()[name]
        base = {**config.training_settings({"training": {}}, spec), "steps": steps, "batch_size": batch_size}
        methods.seed_everything(0)
        attached = methods.load_module(spec["dir"]).attach(copy.deepcopy(model), spec["hyperparameters"])
        runs = {u: [] for u in variants}
        for unpadded in variants:  # warm-up: allocator, kernels
            train.train(
                copy.deepcopy(attached), tok, recs, [], {**base, "steps": 1, "unpadded": unpadded}, 0, precision
            )
        for _ in range(repeats):
            for unpadded in variants:
                settings = {**base, "unpadded": unpadded}
                runs[unpadded].append(train.train(copy.deepcopy(attached), tok, recs, [], settings, 0, precision))
        trainable, total = methods.count_parameters(attached)
        for unpadded in variants:
            loop = loop_of(runs[unpadded])
            label = f"train {name}" + ("" if unpadded else " (padded)")
            r = row(label, f"{steps} steps x {batch_size}", loop / steps, runs[unpadded][0]["train_tokens"] / steps, 0)
            r.update(
                tokens_per_s=statistics.median(x["tokens_per_s"] for x in runs[unpadded]),
                flop_per_s=1e9 * statistics.median(x["gflop_per_s"] for x in runs[unpadded]),
                trainable_params=trainable,
                total_params=total,
                unpadded=unpadded,
            )
            out.append(r)
        if len(variants) == 2:  # the unpadded row: how much faster than the padded loop, side by side
            out[-2]["speedup_vs_padded"] = loop_of(runs[False]) / loop_of(runs[True])
        del attached
    return out


GEMM_OPS = ("aten::mm", "aten::addmm", "aten::bmm")


def where_rows(model, tok, recs, names, batch_size, precision):
    """Per method, one unpadded training step (after a warm-up step) under torch.profiler: self CPU time of the
    matrix multiplies against the whole step, and the GFLOP/s of those multiplies (the profiler's FLOP count)."""
    from torch.profiler import ProfilerActivity, profile

    out = []
    for name in names:
        spec = config.discover_methods()[name]
        settings = {**config.training_settings({"training": {}}, spec), "steps": 1, "batch_size": batch_size}
        methods.seed_everything(0)
        attached = methods.load_module(spec["dir"]).attach(copy.deepcopy(model), spec["hyperparameters"])
        train.train(copy.deepcopy(attached), tok, recs, [], settings, 0, precision)  # warm-up
        run = copy.deepcopy(attached)
        t = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
            stats = train.train(run, tok, recs, [], settings, 0, precision)
        wall = time.perf_counter() - t
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events) / 1e6
        gemm = [e for e in events if e.key in GEMM_OPS]
        gemm_s, gemm_flops = sum(e.self_cpu_time_total for e in gemm) / 1e6, sum(e.flops for e in gemm)
        top = sorted((e for e in events if e.key not in GEMM_OPS), key=lambda e: -e.self_cpu_time_total)[:4]
        out.append(
            {
                "method": name,
                "step_s": stats["train_loop_s"],
                "profiled_s": total,
                "wall_s": wall,
                "gemm_share": gemm_s / total,
                "gemm_flop_per_s": gemm_flops / gemm_s,
                "other_top": [(e.key, round(e.self_cpu_time_total / 1e6 / total, 3)) for e in top],
            }
        )
        del attached, run
    return out


def loop_of(runs):
    return statistics.median(r["train_loop_s"] for r in runs)


@torch.no_grad()
def generation_rows(model, tok, prompts, new_tokens, precision, device, repeats):
    """Prefill: generate() of one token; decode: (generate() of 1 + n tokens - that) / n, per repeat."""
    tok.padding_side = "left"  # a batch of prompts ends where generation starts
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    n_params, batch, prompt_tokens = (
        sum(p.numel() for p in model.parameters()),
        len(prompts),
        int(enc.attention_mask.sum()),
    )

    def timed(n):
        sync(device)
        t = time.perf_counter()
        latency.generate(model, tok, enc, n)
        sync(device)
        return time.perf_counter() - t

    with train.autocast(precision, device):
        timed(1 + new_tokens)  # warm-up: allocator, kernels
        pairs = [(timed(1), timed(1 + new_tokens)) for _ in range(repeats)]
    prefill = statistics.median(a for a, _ in pairs)
    step = statistics.median((b - a) / new_tokens for a, b in pairs)
    shape = f"batch {batch}, {prompt_tokens // batch} prompt tokens"
    return [
        row("prefill", shape, prefill, prompt_tokens, flops.forward_flops(n_params, prompt_tokens)),
        row("decode", f"{shape}, {new_tokens} new", step, batch, flops.forward_flops(n_params, batch)),
    ]


def cpu_name():
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def table(rows, device, n):
    """Plain text: rate in GFLOP/s on a CPU, TFLOP/s on a GPU; every fraction of the first row's (n^3 GEMM)."""
    unit, scale = ("TFLOP/s", 1e12) if device == "cuda" else ("GFLOP/s", 1e9)
    limit, head = rows[0]["flop_per_s"], f"of {n}² GEMM"
    lines = [f"{'measure':<32} {'shape':<34} {'tokens/s':>10} {unit:>9} {head:>14} {'median s':>9}"]
    for r in rows:
        lines.append(
            f"{r['measure']:<32} {r['shape']:<34} {r['tokens_per_s']:>10.1f} {r['flop_per_s'] / scale:>9.2f} "
            f"{r['flop_per_s'] / limit:>14.1%} {r['median_s']:>9.4f}"
        )
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default=DEFAULT_BASE, help=f"base model folder (default {DEFAULT_BASE}), or 'tiny'")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (default 1: one DAG job's)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument(
        "--precision", choices=sorted(DTYPES), default="fp32", help="GEMM dtype, training/generation autocast"
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--limit-n", type=int, default=2048, help="the reference GEMM's size (a GPU needs 8192 to fill)")
    ap.add_argument("--methods", nargs="+", default=["full", "lora"])
    ap.add_argument("--steps", type=int, default=2, help="training steps per repeat")
    ap.add_argument("--batch-size", type=int, default=4, help="training batch (the default profile's)")
    ap.add_argument("--gen-batch", type=int, default=1, help="prompts generated together (latency.json's: 1)")
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--data", help="training JSONL (default: the default run's summarization split, else synthetic)")
    ap.add_argument("--out", help="also write the rows and the setting as JSON here")
    ap.add_argument("--where", action="store_true", help="also profile one training step per method (see above)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    model, tok, name = load(args.base, args.device)
    d, ff = dims(model.config)
    recs = records(args.data)[: args.steps * args.batch_size]
    encoded = train.encode(recs, tok, config.training_defaults()["max_seq_len"])
    tokens = len(recs[: args.batch_size]) * max(len(ids) for ids, _ in encoded[: args.batch_size])  # padded batch
    shapes = [
        (f"{args.limit_n}² (the limit)", (args.limit_n,) * 3),
        ("d x d, train batch", (tokens, d, d)),
        ("d x d_ff, train batch", (tokens, d, ff)),
        ("d x d_ff, decode step", (args.gen_batch, d, ff)),
    ]
    rows = gemm_rows(shapes, DTYPES[args.precision], args.device, args.repeats)
    rows += train_rows(model, tok, recs, args.methods, args.steps, args.batch_size, args.precision, args.repeats)
    prompts = [r["prompt"] for r in recs[: args.gen_batch]]
    rows += generation_rows(model, tok, prompts, args.new_tokens, args.precision, args.device, args.repeats)
    for r in rows:
        r["fraction_of_limit"] = r["flop_per_s"] / rows[0]["flop_per_s"]
    setting = {
        "model": name,
        "params": sum(p.numel() for p in model.parameters()),
        "d_model": d,
        "d_ff": ff,
        "device": args.device,
        "precision": args.precision,
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "limit_gemm": f"{args.limit_n}x{args.limit_n}x{args.limit_n}",
        "cpu": cpu_name(),
        "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
        "torch": torch.__version__,
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],  # was it shared?
    }
    print(
        f"{name} ({setting['params']:,} params, d={d}, d_ff={ff}), {args.device} {args.precision}, "
        f"{setting['threads']} thread(s), median of {args.repeats}; load average {setting['load_average_before_after']}"
    )
    print(table(rows, args.device, args.limit_n), flush=True)
    for r in rows:
        if "speedup_vs_padded" in r:
            print(
                f"{r['measure']}: unpadded / padded loop time = 1 / {r['speedup_vs_padded']:.3f} (median, interleaved)"
            )
    split = where_rows(model, tok, recs, args.methods, args.batch_size, args.precision) if args.where else []
    for w in split:
        limit = rows[0]["flop_per_s"]
        gemm_s = w["gemm_share"] * w["profiled_s"]
        at_limit = gemm_s * w["gemm_flop_per_s"] / limit  # the same multiplies at the limit's rate
        ceiling = at_limit / (at_limit + w["profiled_s"] - gemm_s)
        print(
            f"where {w['method']}: matrix multiplies {w['gemm_share']:.0%} of the step's time, at "
            f"{w['gemm_flop_per_s'] / limit:.0%} of the limit ({w['gemm_flop_per_s'] / 1e9:.1f} GFLOP/s); with every "
            f"multiply at the limit and the rest as it is, the step would reach at most {ceiling:.0%} of it. "
            "Largest other ops: " + ", ".join(f"{k} {v:.0%}" for k, v in w["other_top"])
        )
    if args.out:
        io.write_text(args.out, json.dumps({"setting": setting, "rows": rows, "where": split}, indent=2) + "\n")


if __name__ == "__main__":
    main()
