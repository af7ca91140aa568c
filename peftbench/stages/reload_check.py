"""The evaluated model is the trained model: after fine-tuning stores its task state, the state is read
back from disk, loaded through the method's own `load` into a freshly loaded base model, and its logits
on a fixed batch are compared with the trained model's, and with the untrained model's (what `load` gives
when it ignores the state: the method attached to the base, untrained, with the same seed):

    max |logits_reloaded - logits_trained| <= ATOL + max(RTOL * max |logits_trained|, rounding)
    rms(logits_reloaded - logits_trained)  <  rms(logits_reloaded - logits_untrained)

A `task_state` that forgets tensors or a `load` that ignores the state would otherwise evaluate the
untrained base and produce a row that looks right. The tolerance allows the rounding of a merged method
(LoRA's W0 + BA folded into W0 differs from the unmerged sum in the last bits). In fp32 that is far below
RTOL. In bf16/fp16 weights (model.dtype) it is measured on the model itself (`rounding_noise`: the logits'
change when every weight moves by one unit in its last place, more than a merge's one rounding does) instead
of a fixed multiple of eps, which let an ignored state through in bf16 (issue 27: 0.0117 within 0.0222 on the
tiny model) and refused an honest merged LoRA on SmolLM2-135M (bf16 arithmetic alone moves its logits by ~1-2,
measured 1.7-1.9; 2 eps x max |logit| is 0.54). The second line needs no tolerance: the reloaded model must be
nearer the trained model than the untrained one. An ignored state reloads to the untrained model exactly, so it
fails at every dtype; so does a state whose training is lost when it is rounded or merged (the run would score
the untrained model). Methods that fold nothing reload to equal logits (train.json's max_abs_logit_diff 0)."""

import torch

from peftbench.stages import train

ATOL, RTOL = 1e-4, 1e-4
# the same batch for every method: the first validation records, cut to their first tokens. A state that
# round-trips wrongly changes every logit, so a short batch finds it; padding stays in it where lengths differ.
BATCH, TOKENS = 2, 64


class ReloadMismatch(ValueError):
    pass


def fixed_batch(records, tokenizer, max_seq_len):
    ids, _, mask = train.collate(
        train.encode(records[:BATCH], tokenizer, max_seq_len, "validation.jsonl"), tokenizer.pad_token_id
    )
    return ids[:, :TOKENS], mask[:, :TOKENS]


@torch.no_grad()
def logits(model, ids, mask):
    model.eval()
    device = next(model.parameters()).device
    return model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().cpu()


@torch.no_grad()
def rounding_noise(model, ids, mask, reference):
    """What one more rounding of the weights does to this model's logits, measured: every floating weight moves
    by one unit in the last place of its dtype, the logits are recomputed, and every weight is moved back exactly.
    A merge rounds each folded weight once (at most half a unit), so its effect stays below this; bf16 logits are
    themselves rounded, which this includes. Returns max |change|."""
    move_one_unit(model)
    try:
        moved = logits(model, ids, mask)
    finally:
        move_one_unit(model)  # its own inverse: the same bits again
    return (moved - reference).abs().max().item()


INTS = {2: torch.int16, 4: torch.int32, 8: torch.int64}


def move_one_unit(model):
    """Every floating weight to a neighbouring representable value: the lowest bit of its pattern flipped, which
    moves its magnitude one unit in the last place up (even pattern) or down (odd), as that bit happens to be. One
    in-place integer pass, nothing drawn or stored; flipping again restores every bit. Finite weights stay finite
    (0 becomes the smallest subnormal, the largest value its lower neighbour)."""
    for p in model.parameters():
        if p.is_floating_point():
            p.view(INTS[p.element_size()]).bitwise_xor_(1)


def check(method, expected, reloaded, trainable, dtype=torch.float32, untrained=None, rounding=0.0):
    """Compare the reloaded model's logits with the trained model's (and, given, the untrained one's); returns
    what train.json records."""
    if reloaded.shape != expected.shape:
        raise ReloadMismatch(
            f"method '{method}': the model rebuilt by its load() from the stored task state "
            f"gives logits of shape {tuple(reloaded.shape)}, the trained model "
            f"{tuple(expected.shape)}: load() does not rebuild the trained model"
        )
    diff = (reloaded - expected).abs().max().item()
    tol = ATOL + max(RTOL * expected.abs().max().item(), rounding if dtype != torch.float32 else 0.0)
    if not diff <= tol:  # also catches NaN
        raise ReloadMismatch(
            f"method '{method}': the model rebuilt by its load() from the stored task state does not reproduce "
            f"the trained model (max |logit difference| {diff:.3g} > tolerance {tol:.3g} on {expected.shape[0]} "
            f"validation records; {trainable:,} parameters were trained): task_state() must return every tensor "
            f"training changed and load() must apply them (methods/{method}/method.py)"
        )
    out = {"max_abs_logit_diff": diff, "tolerance": tol, "records": int(expected.shape[0])}
    if dtype != torch.float32:
        out["rounding_noise"] = rounding
    if untrained is not None and trainable:
        rms = lambda a, b: (a - b).pow(2).mean().sqrt().item()  # noqa: E731
        off, ignored = rms(reloaded, expected), rms(reloaded, untrained)
        out.update(reloaded_vs_trained_rms=off, reloaded_vs_untrained_rms=ignored)
        if rms(untrained, expected) > 0 and not off < ignored:
            raise ReloadMismatch(
                f"method '{method}': the model rebuilt by its load() from the stored task state is no nearer the "
                f"trained model than the untrained model is (RMS logit difference {off:.3g} to the trained model, "
                f"{ignored:.3g} to the untrained one, on {expected.shape[0]} validation records; {trainable:,} "
                f"parameters were trained): load() ignores the state, or what training changed is lost when the "
                f"state is stored in {str(dtype).removeprefix('torch.')}; the run would score the untrained model "
                f"(methods/{method}/method.py)"
            )
    return out
