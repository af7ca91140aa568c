"""Unpadded batches (training.unpadded, the default): each sequence goes through the model alone, its loss
weighted by its share of the batch's target tokens. The loss and the gradient are the padded batch's up to
float rounding, for every kind of method (position-reading ones included), and no padding is computed."""

import pytest
import torch

from peftbench.model import assemble
from peftbench.model.assemble import method_model
from peftbench.stages import train

# prompts of very different lengths, so a padded batch of them is mostly padding
RECORDS = [
    {
        "id": str(i),
        "prompt": "Translate English to Spanish.\nEnglish:" + " the old house" * (1 + 4 * i) + "\nSpanish:",
        "target": "la casa" + " vieja" * i,
    }
    for i in range(4)
]


def one_step(model, tok, unpadded):
    """Loss and gradient of one batch of RECORDS; counts the positions the model is run on."""
    seen = []
    hook = model.get_input_embeddings().register_forward_hook(lambda m, i, o: seen.append(i[0].numel()))
    model.train()
    for p in model.parameters():
        p.grad = None
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    loss = train.backward(model, train.encode(RECORDS, tok, 384), tok.pad_token_id, 0.1, "fp32", scaler, unpadded, 1)
    hook.remove()
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad])
    return loss.item(), grads, sum(seen)


@pytest.mark.parametrize("method", ["full", "lora", "ia3", "prompt-tuning", "prefix", "loreft", "houlsby"])
def test_unpadded_gives_the_padded_batchs_loss_and_gradient(tiny_dir, method_specs, method):
    model, tok, *_ = method_model(tiny_dir, method_specs[method], seed=0, base_dropout=0.0)
    assemble.set_dropout(model, 0.0)  # the method's own dropout too: both paths must see the same function
    padded_loss, padded_grad, padded_positions = one_step(model, tok, unpadded=False)
    loss, grad, positions = one_step(model, tok, unpadded=True)
    assert loss == pytest.approx(padded_loss, rel=1e-5)
    assert ((grad - padded_grad).norm() / padded_grad.norm()).item() < 1e-4
    lengths = [len(ids) for ids, _ in train.encode(RECORDS, tok, 384)]
    assert positions == sum(lengths) < padded_positions == len(lengths) * max(lengths)


def test_unpadded_validation_loss_is_the_padded_one(tiny_dir, method_specs):
    model, tok, *_ = method_model(tiny_dir, method_specs["lora"], seed=0)
    data = train.encode(RECORDS, tok, 384)
    padded = train.evaluate_loss(model, data, 4, tok.pad_token_id, "fp32", unpadded=False)
    assert train.evaluate_loss(model, data, 4, tok.pad_token_id, "fp32", unpadded=True) == pytest.approx(
        padded, rel=1e-5
    )
