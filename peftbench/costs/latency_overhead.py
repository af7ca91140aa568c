"""Inference latency overhead, measured side by side in one process on the same inputs.

Hu et al. 2021 (LoRA), Sec. 3 "Adapter Layers Introduce Inference Latency" and Table 1: a forward pass of
GPT-2 medium with Adapter-L / Adapter-H is slower than the base model (+20.7% / +30.3% at batch 1 x 128
tokens on an RTX8000), while merged LoRA is the base model. Here:

  (a) forward: a randomly initialised GPT-2-medium-shaped model (latency does not depend on the weights'
      values) and, on copies of it, every method that applies to GPT-2, attached through its own
      methods/<name>/method.py and deployed with `load` (LoRA both unmerged and merged). Not here: full,
      scratch, shared-layers and zero-shot run the base model's graph; LoReFT's hooks sit on
      model.model.layers (Llama's layout, GPT-2 has transformer.h); all of them are in (b);
  (b) generation: ms per generated token at batch 1 on the profile's base model, the base model and
      every method's deployed model, the same prompts.

Variants are timed round-robin (order rotated every round) for `repeats` rounds after a warm-up; a
variant's overhead is the median over rounds of (its time / the base's time in the same round), so load
from other processes cancels out of the ratio. "base (control)" is the base model timed as if it were
another variant: its overhead is the noise floor. Beside each overhead: the FLOPs-predicted one, from
torch's FlopCounterMode on fake tensors (no compute), and the paper's number where Table 1 has one."""

import argparse
import copy
import statistics
import time
import traceback
from pathlib import Path

import torch

from peftbench import config, io, methods
from peftbench.model import base_model
from peftbench.stages import latency
from peftbench.stages.train import autocast

# Hu et al. 2021, Table 1: GPT-2 medium forward ms (RTX8000, mean of 100 trials); (batch, seq) -> |Theta|, ms
PAPER_TABLE1 = {
    (32, 512): (0.5e6, {"base": 1449.4, "adapter-l": 1482.0, "adapter-h": 1492.2}),
    (16, 256): (11e6, {"base": 338.0, "adapter-l": 354.8, "adapter-h": 366.3}),
    (1, 128): (11e6, {"base": 19.8, "adapter-l": 23.9, "adapter-h": 25.8}),
}
PAPER_SAME_AS_BASE = {"lora-merged"}  # the table's "Fine-Tune/LoRA" row: merged LoRA is the base model
GPT2_MEDIUM = {"n_embd": 1024, "n_layer": 24, "n_head": 16}
CONTROL = "base (control)"

# GPT-2's module names for the methods (their method.yaml defaults name Llama's)
HOULSBY_GPT2 = {
    "target_modules": {"attention": "attn.c_proj", "mlp": "mlp.c_proj"},
    "train_norms": ["ln_1", "ln_2", "transformer.ln_f"],
}
LORA_GPT2 = {
    "r": 4,
    "alpha": 32,
    "dropout": 0.0,
    "target_modules": ["c_attn"],
}  # Table 11: r = 4 (c_attn: q, k, v fused)
IA3_GPT2 = {"target_modules": ["c_attn", "mlp.c_proj"], "feedforward_modules": ["mlp.c_proj"]}


def adapter_bottleneck(params, d, n_layers, placement):
    """The bottleneck m whose adapters hold `params` parameters (Table 1's |Theta|, adapter layers only):
    Adapter-H, two adapters per block of 2 d m + m + d; Adapter-L, one per block, plus its LayerNorm (2 d)."""
    per_block, extra = (1, 2 * d) if placement == "mlp_only" else (2, 0)
    m = round((params / (per_block * n_layers) - d - extra) / (2 * d + 1))
    if m < 1:
        raise ValueError(f"adapter_params={params:g} is too few for one bottleneck unit at d={d}, {n_layers} layers")
    return m


def gpt2_variants(d, n_layers, adapter_params):
    """[(label, method folder, hyperparameters laid over its method.yaml)]: Table 1's rows and the others."""
    return [
        (
            "adapter-l",
            "houlsby",
            {
                **HOULSBY_GPT2,
                "placement": "mlp_only",
                "size": adapter_bottleneck(adapter_params, d, n_layers, "mlp_only"),
            },
        ),
        (
            "adapter-h",
            "houlsby",
            {
                **HOULSBY_GPT2,
                "placement": "houlsby",
                "size": adapter_bottleneck(adapter_params, d, n_layers, "houlsby"),
            },
        ),
        ("lora", "lora", {**LORA_GPT2, "merge": False}),
        ("lora-merged", "lora", {**LORA_GPT2, "merge": True}),
        ("ia3", "ia3", {**IA3_GPT2, "merge": False}),
        ("prefix", "prefix", {}),
        ("prompt-tuning", "prompt-tuning", {}),
    ]


def random_gpt2(arch=None, seed=0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(**{**GPT2_MEDIUM, **(arch or {})})).eval()


# ---- building deployed variants on copies of one base -------------------------------------------------


def shared_copy(model):
    """A structural copy whose parameters ARE the base's (no memory); for methods that wrap or hook modules."""
    return copy.deepcopy(model, memo={id(p): p for p in model.parameters()})


def fake_task_state(module, base, hp, seed=0, scale=0.05):
    """A stand-in for a trained task state: attach (to a copy), move the parameters the method ADDS (LoRA's
    B starts at 0), take `task_state`. Parameters the base already had (norms, blocks) keep their values, so
    loading the state into a copy that shares them writes equal values; parametrised ones (LoReFT's
    orthogonal R) are left as drawn."""
    model = copy.deepcopy(base)
    owned = {p.data_ptr() for p in model.parameters()}
    methods.seed_everything(seed)  # the method's own init (LoRA's A): the same state every call
    model = module.attach(model, hp)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad and p.data_ptr() not in owned and "parametrizations." not in name:
                p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return {k: v.detach().clone() for k, v in module.task_state(model).items()}


def writes_base(base, state, hp):
    """Whether `load` will change the base's weights in place: a merge (hp `merge`, the lora / ia3 convention)
    or a state holding base tensors with other values (scratch's re-initialised weights)."""
    own = base.state_dict()
    return bool(hp.get("merge")) or any(k in own and not torch.equal(v, own[k]) for k, v in state.items())


def deployed(module, base, hp, state):
    """module.load on a copy of base: a full copy if the load writes base weights, else one sharing them."""
    model = module.load(copy.deepcopy(base) if writes_base(base, state, hp) else shared_copy(base), state, hp)
    return model.requires_grad_(False).eval()


def fingerprint(model):
    """Cheap check that the shared base weights were not written by a variant."""
    with torch.no_grad():
        return [float(p.double().sum()) for p in model.parameters()]


def added_params(model, base):
    return sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in base.parameters())


def build_gpt2(arch=None, adapter_params=11e6, seed=0):
    """The random base and {label: (deployed model, method folder, hp)}."""
    specs = config.discover_methods()
    base = random_gpt2(arch, seed)
    before = fingerprint(base)
    out = {}
    for label, folder, overrides in gpt2_variants(base.config.n_embd, base.config.n_layer, adapter_params):
        if folder not in specs:  # a repository without that method folder
            continue
        module = methods.load_module(specs[folder]["dir"])
        hp = {**specs[folder]["hyperparameters"], **overrides}
        state = fake_task_state(module, base, hp, seed)
        out[label] = (deployed(module, base, hp, state), folder, hp)
    if fingerprint(base) != before:
        raise RuntimeError("a variant changed the shared base weights: its load needs a private copy")
    return base, out


# ---- timing --------------------------------------------------------------------------------------------

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def interleaved_ms(fns, repeats, warmup=1, clock="wall"):
    """{name: [ms per round]}: round-robin over fns, the order rotated each round (no variant always runs
    first, right after another's cache traffic). clock "cpu": the process's CPU time instead of wall time,
    for a shared machine at one thread (time spent waiting for a core is not counted)."""
    timer, names = CLOCKS[clock], list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    times = {n: [] for n in names}
    for r in range(repeats):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            t = timer()
            fns[n]()
            times[n].append(1000 * (timer() - t))
    return times


def ratio_stats(times, ref="base", resamples=2000, seed=0):
    """{name: (median %, half the interquartile range %, 95% interval of the median %)} of the per-round
    ratio to the reference; the interval is a seeded percentile bootstrap over rounds (it covers the
    round-to-round noise of this machine, not other machines)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = {}
    for n, ts in times.items():
        ratios = np.array([100 * (t / b - 1) for t, b in zip(ts, times[ref])])
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        medians = np.median(ratios[rng.integers(0, len(ratios), (resamples, len(ratios)))], axis=1)
        lo, hi = np.percentile(medians, [2.5, 97.5])
        out[n] = (float(np.median(ratios)), (q[2] - q[0]) / 2, (float(lo), float(hi)))
    return out


def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *args, **kwargs):
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query_shape, key_shape, value_shape)


def forward_flops(model, ids):
    """Forward FLOPs counted by torch on fake tensors (shapes only, no compute): matmuls and attention
    (torch counts the CUDA attention kernels; the CPU one is registered here with the same formula).
    Element-wise work (norms, activations, (IA)^3's scaling, residual adds) is not counted."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode

    cpu_sdpa = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    with torch.no_grad(), FakeTensorMode(allow_non_fake_inputs=True):
        fake_ids = torch.zeros(ids.shape, dtype=ids.dtype)
        counter = FlopCounterMode(display=False, custom_mapping={cpu_sdpa: _cpu_sdpa_flops})
        with counter:
            model(input_ids=fake_ids)
    return counter.get_total_flops()


def op_time_delta(base, model, ids, repeats=3):
    """Where a variant's time goes beyond the base's: per aten op, calls and self ms per forward (torch
    profiler; wall clock, so run it on a quiet machine), the variant minus the base, largest first; the two
    are profiled alternately. Matmul FLOPs cannot see element-wise ops or a GEMM too thin to run at full
    speed; this can."""
    import pandas as pd
    from torch.profiler import ProfilerActivity, profile

    totals = {"base": {}, "variant": {}}
    with torch.no_grad():
        model(input_ids=ids), base(input_ids=ids)  # warm-up
        for _ in range(repeats):
            for name, m in (("base", base), ("variant", model)):
                with profile(activities=[ProfilerActivity.CPU]) as prof:
                    m(input_ids=ids)
                for e in prof.key_averages():
                    calls, ms = totals[name].get(e.key, (0, 0.0))
                    totals[name][e.key] = (calls + e.count / repeats, ms + e.self_cpu_time_total / 1000 / repeats)
    a, b = totals["base"], totals["variant"]
    rows = [
        {
            "op": k,
            "calls": b.get(k, (0, 0))[0] - a.get(k, (0, 0))[0],
            "self_ms": round(b.get(k, (0, 0))[1] - a.get(k, (0, 0))[1], 2),
        }
        for k in set(a) | set(b)
    ]
    return pd.DataFrame(rows).sort_values("self_ms", key=abs, ascending=False).reset_index(drop=True)


def forward_rows(base, variants, batch, seq_len, repeats, seed=0, clock="wall", device="cpu", precision="fp32"):
    """Table 1 at one setting: one row per variant (the base and its control first). On a GPU each forward
    is timed to its kernels' end (synchronized), under the profile's autocast precision."""
    ids = torch.randint(0, base.config.vocab_size, (batch, seq_len), generator=torch.Generator().manual_seed(seed))
    models = {"base": base, CONTROL: base, **{k: v[0] for k, v in variants.items()}}
    flops = {n: forward_flops(m, ids) for n, m in models.items()}  # on fake CPU tensors, before any move
    models = {n: m.to(device) for n, m in models.items()}
    ids = ids.to(device)
    done = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    with torch.no_grad(), autocast(precision, device):
        fns = {n: (lambda m=m: (m(input_ids=ids), done())) for n, m in models.items()}
        times = interleaved_ms(fns, repeats, clock=clock)
    stats = ratio_stats(times)
    paper_params, paper_ms = PAPER_TABLE1.get((batch, seq_len), (None, {}))
    rows = []
    for n, m in models.items():
        paper = paper_ms.get("base" if n in PAPER_SAME_AS_BASE else n)
        method, hp = variants[n][1:] if n in variants else ("", {})
        rows.append(
            _row(
                "forward",
                f"gpt2-random d={base.config.n_embd} L={base.config.n_layer}",
                batch,
                seq_len,
                n,
                method,
                hp.get("size", "") if method == "houlsby" else "",
                added_params(m, base),
                times[n],
                stats[n],
                clock,
                flops_overhead_pct=round(100 * (flops[n] / flops["base"] - 1), 2),
                paper_ms=paper if paper is not None else "",
                paper_overhead_pct=round(100 * (paper / paper_ms["base"] - 1), 1) if paper is not None else "",
                paper_params=paper_params if paper is not None else "",
            )
        )
    return rows


def _row(measure, model, batch, seq_len, variant, method, bottleneck, added, times, stats, clock, **paper):
    return {
        "measure": measure,
        "model": model,
        "batch": batch,
        "seq_len": seq_len,
        "variant": variant,
        "method": method,
        "bottleneck": bottleneck,
        "added_params": added,
        "median_ms": round(statistics.median(times), 3),
        "overhead_pct": round(stats[0], 2),
        "noise_pct": round(stats[1], 2),
        "overhead_ci_low": round(stats[2][0], 2),
        "overhead_ci_high": round(stats[2][1], 2),
        "flops_overhead_pct": "",
        "paper_ms": "",
        "paper_overhead_pct": "",
        "paper_params": "",
        **paper,
        "repeats": len(times),
        "clock": clock,
        "threads": torch.get_num_threads(),
    }


def generation_rows(base_dir, specs, prompts, new_tokens, repeats, seed=0, clock="wall"):
    """(b) ms per generated token at batch 1 (latency.py's greedy call), the base vs every method's deployed
    model with a stand-in task state, interleaved, per prompt."""
    base, tok = base_model.load(base_dir)
    base.requires_grad_(False)
    before = fingerprint(base)
    models, folders, failed = {"base": base, CONTROL: base}, {}, []
    for name, spec in specs.items():
        folders[name] = spec.get("variant_of", name)
        try:
            module = methods.load_module(spec["dir"])
            state = fake_task_state(module, base, spec["hyperparameters"], seed)
            models[name] = deployed(module, base, spec["hyperparameters"], state)
            if fingerprint(base) != before:  # its load merged into the shared weights (no `merge` hp): undo,
                base.load_state_dict(base_model.load(base_dir)[0].state_dict())  # then give it its own copy
                models[name] = (
                    module.load(copy.deepcopy(base), state, spec["hyperparameters"]).requires_grad_(False).eval()
                )
        except Exception as e:  # one broken method does not sink the table (or the report)
            traceback.print_exc()
            models.pop(name, None)
            failed.append(
                {
                    "measure": "generate_per_token",
                    "model": Path(base_dir).parent.name,
                    "batch": 1,
                    "seq_len": "",
                    "variant": name,
                    "method": folders[name],
                    "error": f"{type(e).__name__}: {e}"[:300],
                }
            )
    if fingerprint(base) != before:
        raise RuntimeError("a method's load changed the shared base weights: it needs a private copy")
    encoded = [tok(p, return_tensors="pt", add_special_tokens=False) for p in prompts]
    times = {n: [] for n in models}
    with torch.no_grad():
        for enc in encoded:
            fns = {n: (lambda m=m: latency.generate(m, tok, enc, new_tokens)) for n, m in models.items()}
            for n, ts in interleaved_ms(fns, repeats, clock=clock).items():
                times[n] += [t / new_tokens for t in ts]
    stats = ratio_stats(times)
    return [
        _row(
            "generate_per_token",
            Path(base_dir).parent.name,
            1,
            "",
            n,
            folders.get(n, ""),
            "",
            added_params(m, base),
            times[n],
            stats[n],
            clock,
        )
        for n, m in models.items()
    ] + failed


def forward_table(settings, repeats, arch=None, seed=0, clock="wall", device="cpu", precision="fp32"):
    """(a) at every setting {batch, seq_len, adapter_params (default: Table 1's |Theta| there, else 11M)}."""
    rows = []
    for s in settings:
        params = s.get("adapter_params") or PAPER_TABLE1.get((s["batch"], s["seq_len"]), (11e6,))[0]
        base, variants = build_gpt2(arch, params, seed)
        rows += forward_rows(base, variants, s["batch"], s["seq_len"], repeats, seed, clock, device, precision)
        del base, variants
    return rows


def run(block, base_dir, specs, prompts, out_csv):
    """The DAG's job, from the profile's `latency_overhead` block: (a), then (b) on the base model; one CSV."""
    import pandas as pd

    rows = forward_table(block["settings"], block["repeats"], block.get("architecture"), clock=block["clock"])
    gen = block["generation"]
    if gen["repeats"]:
        rows += generation_rows(
            base_dir, specs, prompts[: gen["prompts"]], gen["new_tokens"], gen["repeats"], clock=block["clock"]
        )
    df = pd.DataFrame(rows)
    with io.atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False)
    return df


COLUMNS = [
    "measure",
    "batch",
    "seq_len",
    "variant",
    "added_params",
    "median_ms",
    "overhead_pct",
    "overhead_ci_low",
    "overhead_ci_high",
    "noise_pct",
    "flops_overhead_pct",
    "paper_overhead_pct",
]


def main(argv=None):
    """python -m peftbench.costs.latency_overhead [--settings 1x128 16x256] [--base results/<model>/base_model]"""
    import pandas as pd

    ap = argparse.ArgumentParser(description="Latency overhead of each method vs the base model, side by side.")
    ap.add_argument("--settings", nargs="*", default=["1x128", "16x256"], help="batch x seq_len: 1x128 16x256 32x512")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int)
    ap.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="cpu: process CPU time (use with --threads 1 on a shared machine)",
    )
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where (a) runs (b stays on the CPU)")
    ap.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32", help="(a)'s autocast dtype")
    ap.add_argument("--tiny", action="store_true", help="a 2-layer, 64-wide GPT-2 (seconds: checks the plumbing)")
    ap.add_argument("--base", help="also (b): ms per generated token on this base model folder, every method")
    ap.add_argument("--prompts", default="results/data/qa/test.jsonl", help="JSONL with a 'prompt' field, for (b)")
    ap.add_argument("--n-prompts", type=int, default=2)
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--csv", help="also write every row here")
    ap.add_argument(
        "--explain",
        nargs="*",
        default=[],
        metavar="VARIANT",
        help="per-op time of these variants minus the base's, at the first setting (torch profiler)",
    )
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    arch = {"n_embd": 64, "n_layer": 2, "n_head": 4} if args.tiny else None
    rows = []
    for text in args.settings:
        batch, seq_len = map(int, text.split("x"))
        setting = {"batch": batch, "seq_len": seq_len, **({"adapter_params": 5000} if args.tiny else {})}
        new = forward_table(
            [setting], args.repeats, arch, clock=args.clock, device=args.device, precision=args.precision
        )
        print(pd.DataFrame(new)[COLUMNS].to_string(index=False), "\n", flush=True)
        rows += new
        if args.csv:
            pd.DataFrame(rows).to_csv(args.csv, index=False)
    if args.explain:
        batch, seq_len = map(int, args.settings[0].split("x"))
        params = 5000 if args.tiny else PAPER_TABLE1.get((batch, seq_len), (11e6,))[0]
        base, variants = build_gpt2(arch, params)
        ids = torch.randint(0, base.config.vocab_size, (batch, seq_len), generator=torch.Generator().manual_seed(0))
        for name in args.explain:
            print(f"{name} minus base, {batch}x{seq_len}, per forward:")
            print(op_time_delta(base, variants[name][0], ids).head(12).to_string(index=False), "\n", flush=True)
    if args.base:
        prompts = [r["prompt"] for r in io.read_jsonl(args.prompts, required=("prompt",))[: args.n_prompts]]
        new = generation_rows(
            args.base, config.discover_methods(), prompts, args.new_tokens, args.repeats, clock=args.clock
        )
        print(pd.DataFrame(new)[COLUMNS].to_string(index=False), flush=True)
        rows += new
    if args.csv:
        pd.DataFrame(rows).to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
