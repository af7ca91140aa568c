"""The one training loop every method shares (nanoGPT-sized on purpose).

Causal LM on prompt + " " + target + "\\n" (or + EOS, for a task with `target_end: eos`); the loss counts
target tokens only, optionally label-smoothed. AdamW, linear warm-up then linear decay, gradient clipping
(max_grad_norm 0: none), optional bf16 autocast or fp16 autocast with a GradScaler, seeded batch order.
By default each sequence of a batch goes through the model alone (`unpadded`): no padding is computed."""

from __future__ import annotations

import contextlib
import math
import random
import resource
import time
from typing import TYPE_CHECKING

import torch
from tqdm import tqdm

from peftbench import methods
from peftbench.model import flops

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from peftbench.stages.checkpoint import Checkpoints

Encoded = list[tuple[list[int], list[int]]]  # [(input_ids, labels)] of `encode`


def completion(target: str, end: str = "newline") -> str:
    """What the model learns to generate after the prompt; lm-eval stops at the newline. With end="eos" the
    text has no newline: `encode` appends the tokenizer's EOS token, which beam search ends a hypothesis at."""
    return " " + target + ("\n" if end == "newline" else "")


def target_ids(target: str, tokenizer: PreTrainedTokenizerBase, end: str = "newline") -> list[int]:
    """Token ids of the completion; end="eos": " " + target + [EOS], as the LoRA repo's E2E data
    (examples/NLG/src/gpt2_encode.py --add_eos) and its decoder's eos_token_id."""
    ids = tokenizer(completion(target, end), add_special_tokens=False).input_ids
    if end == "eos":
        if tokenizer.eos_token_id is None:
            raise ValueError("target_end: eos needs a tokenizer with an eos_token")
        ids = ids + [tokenizer.eos_token_id]
    return ids


def encode(
    records: list[dict],
    tokenizer: PreTrainedTokenizerBase,
    max_seq_len: int,
    where: str = "train.jsonl",
    end: str = "newline",
    bos: bool = False,
) -> Encoded:
    """[(input_ids, labels)] with labels = -100 on the prompt (and on BOS, with bos=True: the profile's
    model.add_bos, which evaluation passes to lm-eval as add_bos_token). Too long is an error, not a truncation."""
    out = []
    for r in records:
        prompt = [tokenizer.bos_token_id] * bos + tokenizer(r["prompt"], add_special_tokens=False).input_ids
        target = target_ids(r["target"], tokenizer, end)
        if len(prompt) + len(target) > max_seq_len:
            raise ValueError(
                f"{where}: record {r['id']}: {len(prompt) + len(target)} tokens exceed "
                f"training.max_seq_len={max_seq_len}"
            )
        out.append((prompt + target, [-100] * len(prompt) + target))
    return out


def collate(batch: Encoded, pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence in the batch (no padding waste beyond it)."""
    n = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), n), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), n), dtype=torch.long)
    for i, (x, y) in enumerate(batch):
        ids[i, : len(x)], labels[i, : len(y)], mask[i, : len(x)] = torch.tensor(x), torch.tensor(y), 1
    return ids, labels, mask


def target_loss(
    model: torch.nn.Module,
    ids: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Mean cross-entropy over target tokens; logits at position t predict token t+1. With label smoothing
    eps: (1 - eps) (-log p_y) + eps mean_c(-log p_c), torch's label_smoothing and the LoRA repo's
    (examples/NLG/src/model.py, --label_smooth 0.1 for E2E).

    Only the positions from the batch's earliest target onward go through the LM head
    (`logits_to_keep`): prompt positions carry no loss, and the head is ~20% of a 135M model's FLOPs."""
    is_target = labels != -100
    prompt_lengths = is_target.int().argmax(1)  # index of each row's first target token
    start = max(int(prompt_lengths.min()) - 1, 0)
    with methods.running_prompts(prompt_lengths):  # what a method may read: peftbench.methods.prompt_lengths()
        logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=ids.size(1) - start).logits
    if logits.size(1) != ids.size(1) - start:  # e.g. a method that prepends positions and ignores logits_to_keep
        raise ValueError(f"logits cover {logits.size(1)} positions, expected the last {ids.size(1) - start}")
    logits = logits[:, :-1].float()
    targets = labels[:, start + 1 :]
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100, label_smoothing=label_smoothing
    )


def n_targets(example: tuple[list[int], list[int]]) -> int:
    """Target tokens of one encoded example that carry loss (the first label has no context)."""
    return sum(1 for y in example[1][1:] if y != -100)


def backward(
    model: torch.nn.Module,
    batch: Encoded,
    pad_id: int,
    smoothing: float,
    precision: str,
    scaler: torch.amp.GradScaler,
    unpadded: bool,
    step: int,
) -> torch.Tensor:
    """Forward and backward of one batch; returns its loss, the mean over the batch's target tokens.

    unpadded: each sequence alone (no padding computed), its loss weighted by its share of the batch's
    target tokens, so the gradients accumulate to the padded batch's:

        L = sum_i (n_i / N) L_i,   L_i = mean target loss of sequence i,   n_i its target tokens, N = sum_i n_i
    """
    device = next(model.parameters()).device
    if unpadded:
        counts = [n_targets(x) for x in batch]
        total = max(sum(counts), 1)
        parts = [([x], n / total) for x, n in zip(batch, counts)]  # (sequences, share n_i / N)
    else:
        parts = [(batch, 1.0)]
    loss_sum = torch.zeros((), device=device)
    for part, share in parts:
        ids, labels, mask = (t.to(device) for t in collate(part, pad_id))
        with autocast(precision, device.type):
            loss = target_loss(model, ids, labels, mask, smoothing)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {step}: training diverged")
        scaler.scale(loss * share).backward()
        loss_sum += loss.detach() * share
    return loss_sum


def autocast(precision: str, device: str = "cpu") -> contextlib.AbstractContextManager:
    if precision in ("bf16", "fp16"):
        return torch.autocast(device_type=device, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
    return contextlib.nullcontext()


def batches(n_examples: int, batch_size: int, steps: int, seed: int) -> list[list[int]]:
    """Indices for `steps` batches: reshuffled every epoch with a seeded RNG."""
    rng, order = random.Random(seed), []
    while len(order) < steps * batch_size:
        epoch = list(range(n_examples))
        rng.shuffle(epoch)
        order += epoch
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(steps)]


def peak_memory_bytes(device: str) -> int:
    if device == "cuda":
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


@torch.no_grad()
def evaluate_loss(
    model: torch.nn.Module, data: Encoded, batch_size: int, pad_id: int, precision: str, unpadded: bool = False
) -> float:
    """Mean target loss over `data` (the validation split); unpadded: one sequence per forward."""
    if unpadded:
        return mean_loss(record_losses(model, data, pad_id, precision))
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    size = batch_size
    for i in range(0, len(data), size):
        ids, labels, mask = (t.to(device) for t in collate(data[i : i + size], pad_id))
        with autocast(precision, device.type):
            loss = target_loss(model, ids, labels, mask)
        n = int((labels[:, 1:] != -100).sum())
        total, count = total + loss.item() * n, count + n
    return total / max(count, 1)


@torch.no_grad()
def record_losses(model: torch.nn.Module, data: Encoded, pad_id: int, precision: str) -> list[tuple[float, int]]:
    """Per record of `data`, one sequence per forward: (the sum of its target tokens' losses, their number). The
    learning-rate search resamples records from these to say how often another draw would choose the same rate."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for record in data:
        ids, labels, mask = (t.to(device) for t in collate([record], pad_id))
        with autocast(precision, device.type):
            loss = target_loss(model, ids, labels, mask)
        n = int((labels[:, 1:] != -100).sum())
        out.append((loss.item() * n, n))
    return out


def mean_loss(pairs: list[tuple[float, int]]) -> float:
    """The mean target-token loss of `record_losses`' (sum, tokens) pairs."""
    return sum(s for s, _ in pairs) / max(sum(n for _, n in pairs), 1)


def schedule(
    opt: torch.optim.Optimizer, steps: int, warmup_ratio: float, decay: str = "linear"
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ceil(warmup_ratio x steps) steps, then decay to 0 at `steps`: linear, or with
    `decay: cosine` half a cosine, 0.5 (1 + cos(pi x progress)) (transformers' get_cosine_schedule_with_warmup,
    which peft's MetaMathQA benchmark uses)."""
    warmup = math.ceil(warmup_ratio * steps)
    if decay not in ("linear", "cosine"):
        raise ValueError(f"training: field 'schedule': unknown schedule '{decay}' (known: linear, cosine)")

    def factor(s):
        if s < warmup:
            return (s + 1) / warmup
        if decay == "linear":
            return max(0.0, (steps - s) / max(1, steps - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (s - warmup) / max(1, steps - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def optimizer(params: list, settings: dict, steps: int, precision: str, device: str) -> tuple:
    """AdamW, the warm-up/decay schedule, and the loss scaler: fp16 (the LoRA repo's --fp16, apex amp O1) is
    autocast plus dynamic loss scaling, so small gradients do not underflow; bf16 and fp32 need no scaler
    (disabled: scale() and step() pass through)."""
    opt = torch.optim.AdamW(params, lr=settings["learning_rate"], weight_decay=settings["weight_decay"])
    return (
        opt,
        schedule(opt, steps, settings["warmup_ratio"], settings.get("schedule", "linear")),
        torch.amp.GradScaler(device, enabled=precision == "fp16"),
    )


def update(opt, sched, scaler, params: list, clip: float) -> None:
    """One optimizer step after the gradients of a batch: clip their norm (0: no clipping, the LoRA repo's
    --clip 0.0), step, advance the schedule, clear the gradients."""
    if clip > 0:
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, clip)
    scaler.step(opt)
    scaler.update()
    sched.step()
    opt.zero_grad(set_to_none=True)


def rates(model: torch.nn.Module, train_tokens: int, wall: float, loop: float, steps: int) -> dict:
    """The loop's cost: wall time, the steps' own time (`loop`, no checkpoint writes) and the rates over it; FLOPs
    estimated from the trained tokens (peftbench.model.flops). `steps`: 0 when nothing was trained."""
    trainable, total = methods.count_parameters(model)
    work = flops.train_flops(total, trainable, train_tokens)
    return {
        "wall_time_s": round(wall, 3),
        "train_loop_s": round(loop, 3),
        "tokens_per_s": round(train_tokens / loop, 2) if train_tokens else 0.0,
        "step_time_s": round(loop / steps, 4) if steps else 0.0,
        "train_flops": work,
        "gflop_per_s": round(work / loop / 1e9, 3) if work else 0.0,
    }


def train(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    train_records: list[dict],
    val_records: list[dict],
    settings: dict,
    seed: int,
    precision: str = "fp32",
    checkpoints: Checkpoints | None = None,
    target_end: str = "newline",
    add_bos: bool = False,
) -> dict:
    """Run the loop; returns the statistics for train.json. `model` is trained in place.

    With `checkpoints` (peftbench.stages.checkpoint.Checkpoints) the loop saves every N steps and first
    resumes from the newest checkpoint: same batches, same RNG, same optimizer state, so a killed
    and resumed run ends bit for bit where an uninterrupted one does (on CPU)."""
    torch.manual_seed(seed)
    steps, bs = settings["steps"], settings["batch_size"]
    train_data = encode(train_records, tokenizer, settings["max_seq_len"], end=target_end, bos=add_bos)
    val_data = encode(val_records, tokenizer, settings["max_seq_len"], "validation.jsonl", end=target_end, bos=add_bos)
    smoothing, clip = settings.get("label_smoothing", 0.0), settings["max_grad_norm"]
    unpadded = settings.get("unpadded", True)
    pad_id = tokenizer.pad_token_id
    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    progress = {
        "loss_curve": [],
        "train_tokens": 0,
        "target_tokens": 0,
        "elapsed_s": 0.0,
        "checkpoint_s": 0.0,  # writing checkpoints: in the wall time, not in the loop's rates
        "val_loss_before": None,
    }
    start_step, resumed_from = 0, None
    start = time.perf_counter()
    if steps and params:
        opt, sched, scaler = optimizer(params, settings, steps, precision, device.type)
        restored = checkpoints.restore(model, opt, sched, scaler) if checkpoints else None
        if restored:
            start_step, progress = restored
            resumed_from = start_step
    if settings.get("val_loss_before") and progress["val_loss_before"] is None:  # a diagnostic, when asked
        progress["val_loss_before"] = evaluate_loss(model, val_data, bs, pad_id, precision, unpadded)
        start = time.perf_counter()
    if steps and params:
        model.train()
        plan = batches(len(train_data), bs, steps, seed)
        bar = tqdm(plan[start_step:], desc="fine-tune", unit="step", initial=start_step, total=steps)
        for step, idx in enumerate(bar, start_step + 1):
            batch = [train_data[i] for i in idx]
            loss = backward(model, batch, pad_id, smoothing, precision, scaler, unpadded, step)
            update(opt, sched, scaler, params, clip)
            progress["loss_curve"].append(round(loss.item(), 6))
            progress["train_tokens"] += sum(len(ids) for ids, _ in batch)
            progress["target_tokens"] += sum(sum(1 for y in labels if y != -100) for _, labels in batch)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if checkpoints and checkpoints.due(step, steps):
                _save(checkpoints, step, model, opt, sched, scaler, progress, start)
        model.eval()
    if device.type == "cuda":
        torch.cuda.synchronize()  # the last step's kernels belong to the loop's time
    wall = progress.pop("elapsed_s") + time.perf_counter() - start  # training time over all attempts
    loop = wall - progress.pop("checkpoint_s", 0.0)  # the steps alone: what the rates below divide by
    stats = {"steps": steps, "batch_size": bs, **progress, "resumed_from_step": resumed_from}
    # trained tokens = non-padding tokens of every step's batch; FLOPs estimated from them (peftbench.model.flops)
    stats.update(
        rates(model, stats["train_tokens"], wall, loop, steps if params else 0),
        val_loss_after=None  # a diagnostic, when asked: the lr search measures its own (rule validation_loss)
        if not settings.get("val_loss_after")
        else stats["val_loss_before"]  # nothing trained: the model it was measured on
        if not stats["loss_curve"] and stats["val_loss_before"] is not None
        else evaluate_loss(model, val_data, bs, pad_id, precision, unpadded),
    )
    return stats


def _save(checkpoints: Checkpoints, step, model, opt, sched, scaler, progress: dict, start: float) -> None:
    """A checkpoint after `step`, with the time trained so far; the writing's own time is kept apart (in the
    wall time, not in the loop's rates)."""
    saving = time.perf_counter()
    checkpoints.save(step, model, opt, sched, {**progress, "elapsed_s": progress["elapsed_s"] + saving - start}, scaler)
    progress["checkpoint_s"] = progress.get("checkpoint_s", 0.0) + time.perf_counter() - saving
