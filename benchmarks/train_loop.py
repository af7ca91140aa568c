"""What the shared training loop costs over a bare torch loop, on the same model and the same batches.

    harness: peftbench.stages.train.train() itself (encode, collate, target-only loss, AdamW, clipping, warm-up/decay
             schedule, loss bookkeeping), `steps` steps, timed around the call (no validation set: nothing
             outside the loop runs), with padded batches as the bare loops have (training.unpadded: false);
    harness-unpadded: the same with the default training.unpadded (each sequence alone, no padding computed):
             ratio_vs_harness_unpadded = padded harness / unpadded harness, its speed-up;
    bare:    for batch in batches: model(input_ids, attention_mask, labels).loss.backward(); opt.step();
             opt.zero_grad()  on the same batches, already collated, with the same AdamW settings;
    bare-target-loss: the bare loop with the harness's loss (peftbench.stages.train.target_loss: the LM head only
             from the first target position on);
    bare-recipe: that, plus the training recipe's gradient clipping (max_grad_norm) and warm-up/decay schedule:
             what is left of harness / bare-recipe is pure bookkeeping (encoding, collation, the finite-loss
             check, loss logging, progress bar).

Runs rotate (harness, bare, bare-target-loss, bare-recipe) on fresh copies of one initial model; a ratio is the median
over rounds of harness time / bare time in the same round. The issue's target: under 1.05.

    python benchmarks/train_loop.py                      # tiny Llama, full and lora
    python benchmarks/train_loop.py --size smollm2       # SmolLM2-135M-shaped random Llama (minutes)
"""

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from peftbench import config, io, methods  # noqa: E402
from peftbench.model import base_model  # noqa: E402
from peftbench.stages import train  # noqa: E402

SIZES = {
    "tiny": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
    "smollm2": {
        "hidden_size": 576,
        "intermediate_size": 1536,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
    },
}
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
SYNTHETIC = [
    {
        "id": str(i),
        "prompt": f"Summarize the text in one sentence.\nText: {'The river floods the valley. ' * 12}"
        f"Item {i}.\nSummary:",
        "target": f"The valley floods, item {i}.",
    }
    for i in range(64)
]


def records(path=None):
    """The real training records when the default run's data exist, else synthetic ones of similar length."""
    path = Path(path or ROOT / "results/data/summarization/train.jsonl")
    return io.read_jsonl(path, required=("id", "prompt", "target")) if path.is_file() else SYNTHETIC


def setup(size="tiny", method="full", seed=0):
    """(initial model with the method attached, tokenizer, training settings): every run copies the model."""
    local = ROOT / "results/smollm2-135m-instruct/base_model"  # the default run's copy: fast to load
    if (local / "tokenizer.json").is_file():
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(local)
    else:
        tok = base_model.smollm2_tokenizer()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = base_model.tiny_random_llama(tok, SIZES[size])
    spec = config.discover_methods()[method]
    methods.seed_everything(seed)
    model = methods.load_module(spec["dir"]).attach(model, spec["hyperparameters"])
    return model, tok, config.training_settings({"training": {}}, spec)


def harness(model, tok, recs, settings, seed=0):
    train.train(model, tok, recs, [], settings, seed)


def bare(
    model,
    batches,
    settings,
    loss=lambda model, ids, labels, mask: model(input_ids=ids, attention_mask=mask, labels=labels).loss,
    recipe=False,
):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=settings["learning_rate"], weight_decay=settings["weight_decay"])
    sched = train.schedule(opt, len(batches), settings["warmup_ratio"]) if recipe else None  # the harness's schedule
    model.train()
    for ids, labels, mask in batches:
        loss(model, ids, labels, mask).backward()
        if recipe:
            torch.nn.utils.clip_grad_norm_(params, settings["max_grad_norm"])
        opt.step()
        if recipe:
            sched.step()
        opt.zero_grad(set_to_none=True)


def the_batches(tok, recs, settings, seed=0):
    """Exactly the batches train() will draw (same encoding, order and padding)."""
    data = train.encode(recs, tok, settings["max_seq_len"])
    return [
        train.collate([data[i] for i in idx], tok.pad_token_id)
        for idx in train.batches(len(data), settings["batch_size"], settings["steps"], seed)
    ]


def compare(size="tiny", method="full", steps=4, batch_size=4, rounds=3, clock="wall", data=None):
    """Median s/step of each loop and the median per-round ratios harness / bare, harness / bare-target-loss."""
    model, tok, settings = setup(size, method)
    settings = {**settings, "steps": steps, "batch_size": batch_size}
    recs = records(data)[: steps * batch_size]  # what the steps draw: train() encodes its records before
    batches = the_batches(tok, recs, settings)  # its clock starts; here the call is timed, so keep it short
    padded = {**settings, "unpadded": False}  # like for like: the bare loops run padded batches
    jobs = {
        "harness": lambda m: harness(m, tok, recs, padded),
        "bare": lambda m: bare(m, batches, settings),
        "bare-target-loss": lambda m: bare(m, batches, settings, train.target_loss),
        "bare-recipe": lambda m: bare(m, batches, settings, train.target_loss, recipe=True),
        "harness-unpadded": lambda m: harness(m, tok, recs, settings),  # training.unpadded, the default
    }
    timer, names, runs = CLOCKS[clock], list(jobs), {n: [] for n in jobs}
    for i in range(rounds + 1):  # round 0 is a warm-up (allocator, kernels)
        for name in names[i % len(names) :] + names[: i % len(names)]:
            m = copy.deepcopy(model)
            t = timer()
            jobs[name](m)
            if i:
                runs[name].append((timer() - t) / steps)
    ratio = {n: [h / b for h, b in zip(runs["harness"], runs[n])] for n in names[1:]}
    return {
        "size": size,
        "method": method,
        "steps": steps,
        "batch_size": batch_size,
        "rounds": rounds,
        "clock": clock,
        "threads": torch.get_num_threads(),
        "tokens_per_step": sum(int(mask.sum()) for _, _, mask in batches) / steps,
        **{f"{n}_s_per_step": statistics.median(runs[n]) for n in names},
        **{f"ratio_vs_{n.replace('-', '_')}": statistics.median(ratio[n]) for n in names[1:]},
        **{f"ratios_vs_{n.replace('-', '_')}": [round(r, 4) for r in ratio[n]] for n in names[1:]},
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="tiny")
    ap.add_argument("--methods", nargs="+", default=["full", "lora"])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    for method in args.methods:
        r = compare(args.size, method, args.steps, args.batch_size, args.rounds, args.clock)
        loops = ("bare", "bare-target-loss", "bare-recipe")
        times = ", ".join(f"{n} {r[f'{n}_s_per_step']:.3f}" for n in ("harness", *loops))
        ratios = ", ".join(
            f"harness/{n} {r['ratio_vs_' + n.replace('-', '_')]:.3f} {r['ratios_vs_' + n.replace('-', '_')]}"
            for n in loops
        )
        print(
            f"{r['size']} {method}: s/step {times}; {ratios} ({r['clock']} clock, {r['threads']} threads, "
            f"{r['tokens_per_step']:.0f} tokens/step)",
            flush=True,
        )


if __name__ == "__main__":
    main()
