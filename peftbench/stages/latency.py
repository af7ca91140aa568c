"""Generation latency, measured the same way for every method: greedy decoding at batch 1 on the
first N test prompts, exactly `new_tokens` tokens each (EOS ignored), after one warm-up run.
Reported as the median ms per generated token (prefill included, as a user waits for it)."""

import statistics
import time

import torch

from peftbench.stages.train import autocast


def generate(model, tokenizer, enc, new_tokens):
    """Exactly `new_tokens` greedy tokens (EOS ignored) after the encoded prompt."""
    model.generate(
        **enc,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
    )


@torch.no_grad()
def per_token_ms(model, tokenizer, prompts, new_tokens, repeats, precision="fp32"):
    device = next(model.parameters()).device
    encoded = [tokenizer(p, return_tensors="pt", add_special_tokens=False).to(device) for p in prompts]

    with autocast(precision, device.type):
        generate(model, tokenizer, encoded[0], new_tokens)  # warm-up: allocator, kernels
        timings = []
        for _ in range(repeats):
            for enc in encoded:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t = time.perf_counter()
                generate(model, tokenizer, enc, new_tokens)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                timings.append(1000 * (time.perf_counter() - t) / new_tokens)
    return {
        "ms_per_token_median": statistics.median(timings),
        "ms_per_token": [round(x, 4) for x in timings],
        "prompts": len(prompts),
        "new_tokens": new_tokens,
        "repeats": repeats,
        "batch_size": 1,
        "precision": precision,
    }
