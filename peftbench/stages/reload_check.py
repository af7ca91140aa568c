"""The evaluated model is the trained model: after fine-tuning stores its task state, the state is read
back from disk, loaded through the method's own `load` into a freshly loaded base model, and its logits
on a fixed batch are compared with the trained model's:

    max |logits_reloaded - logits_trained| <= ATOL + RTOL * max |logits_trained|

A `task_state` that forgets tensors or a `load` that ignores the state would otherwise evaluate the
untrained base and produce a row that looks right. The tolerance allows the rounding of a merged
method (LoRA's W0 + BA folded into W0 in fp32 differs from the unmerged sum in the last bits). In bf16/fp16
weights (model.dtype) the fold rounds to that dtype's last bit: RTOL becomes 2 of its eps (bf16: 2^-6); methods
that fold nothing still reload to equal logits (train.json's max_abs_logit_diff 0)."""

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


def check(method, expected, reloaded, trainable, dtype=torch.float32):
    """Compare the reloaded model's logits with the trained model's; returns what train.json records."""
    if reloaded.shape != expected.shape:
        raise ReloadMismatch(
            f"method '{method}': the model rebuilt by its load() from the stored task state "
            f"gives logits of shape {tuple(reloaded.shape)}, the trained model "
            f"{tuple(expected.shape)}: load() does not rebuild the trained model"
        )
    diff = (reloaded - expected).abs().max().item()
    rtol = RTOL if dtype == torch.float32 else max(RTOL, 2 * torch.finfo(dtype).eps)
    tol = ATOL + rtol * expected.abs().max().item()
    if not diff <= tol:  # also catches NaN
        raise ReloadMismatch(
            f"method '{method}': the model rebuilt by its load() from the stored task state does not reproduce "
            f"the trained model (max |logit difference| {diff:.3g} > tolerance {tol:.3g} on {expected.shape[0]} "
            f"validation records; {trainable:,} parameters were trained): task_state() must return every tensor "
            f"training changed and load() must apply them (methods/{method}/method.py)"
        )
    return {"max_abs_logit_diff": diff, "tolerance": tol, "records": int(expected.shape[0])}
