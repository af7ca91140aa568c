"""Forward latency of the base model and each method on GPT-2 medium's shape (Hu et al. 2021, Table 1), and
the overhead ratios measured side by side (peftbench.costs.latency_overhead); ms per generated token on the
default base model when the default run's results exist."""

import os

import pytest
import torch
from conftest import CLOCK, ROUNDS

from peftbench import config, io
from peftbench.costs import latency_overhead
from peftbench.paths import ROOT

TINY = os.environ.get("PEFTBENCH_BENCH_TINY") == "1"
SETTINGS = [tuple(map(int, s.split("x"))) for s in os.environ.get("PEFTBENCH_BENCH_SETTINGS", "1x128").split(",")]
ARCH = {"n_embd": 64, "n_layer": 2, "n_head": 4} if TINY else None
VARIANTS = ["base", "adapter-l", "adapter-h", "lora", "lora-merged", "ia3", "prefix", "prompt-tuning"]
DEFAULT_BASE = ROOT / "results/smollm2-135m-instruct/base_model"


@pytest.fixture(scope="module", params=SETTINGS, ids=[f"{b}x{s}" for b, s in SETTINGS])
def setting(request):
    batch, seq_len = request.param
    params = 5000 if TINY else latency_overhead.PAPER_TABLE1.get((batch, seq_len), (11e6,))[0]
    base, variants = latency_overhead.build_gpt2(ARCH, params)
    ids = torch.randint(0, base.config.vocab_size, (batch, seq_len), generator=torch.Generator().manual_seed(0))
    return batch, seq_len, base, variants, ids


@pytest.mark.parametrize("variant", VARIANTS)
def test_forward(benchmark, setting, variant):
    batch, seq_len, base, variants, ids = setting
    model = base if variant == "base" else variants[variant][0]
    benchmark.group = f"forward {batch}x{seq_len}"
    with torch.no_grad():
        benchmark.pedantic(model, kwargs={"input_ids": ids}, rounds=ROUNDS, warmup_rounds=1)


def test_overhead_side_by_side(setting):
    """Interleaved ratios; merged LoRA is the base model's function, so its overhead is noise."""
    batch, seq_len, base, variants, _ = setting
    rows = latency_overhead.forward_rows(base, variants, batch, seq_len, ROUNDS, clock=CLOCK)
    import pandas as pd

    print("\n" + pd.DataFrame(rows)[latency_overhead.COLUMNS + ["paper_ms", "clock", "threads"]].to_string(index=False))
    by = {r["variant"]: r for r in rows}
    band = 2 * max(by["lora-merged"]["noise_pct"], by[latency_overhead.CONTROL]["noise_pct"]) + 2
    assert abs(by["lora-merged"]["overhead_pct"]) <= band, f"merged LoRA {by['lora-merged']['overhead_pct']}% > {band}%"


@pytest.mark.skipif(not (DEFAULT_BASE / "model.safetensors").is_file(), reason="no default base model in results/")
def test_generation_overhead_side_by_side():
    prompts = [r["prompt"] for r in io.read_jsonl(ROOT / "results/data/qa/test.jsonl")[:1]]
    rows = latency_overhead.generation_rows(
        DEFAULT_BASE, config.discover_methods(), prompts, new_tokens=16, repeats=max(2, ROUNDS // 2), clock=CLOCK
    )
    import pandas as pd

    print("\n" + pd.DataFrame(rows)[latency_overhead.COLUMNS + ["clock", "threads"]].to_string(index=False))
    assert all(r["median_ms"] > 0 for r in rows)
