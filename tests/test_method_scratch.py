"""Training from scratch: the base architecture re-initialised, every parameter trained and stored."""

import torch
from conftest import logits
from test_train import RECORDS, settings

from peftbench import methods
from peftbench.model.assemble import method_model
from peftbench.stages import train

# The tiny test base is itself transformers' init under torch.manual_seed(0), and method_model seeds with the
# run's seed before attach, so seed 0 would redraw the very same weights; seed 1 gives a genuinely new draw.
SEED = 1


def test_weights_are_redrawn_and_all_train(tiny_dir, method_specs, tiny, batch):
    """|theta| = every parameter of the model (the tied embedding / LM head counted once)."""
    base, _ = tiny
    model, _, module, base_params = method_model(tiny_dir, method_specs["scratch"], seed=SEED)
    trainable, total = methods.count_parameters(model)
    assert trainable == total == base_params == 3_219_776
    base_state = base.state_dict()
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, base_state[k])]
    assert {k for k in changed if not k.endswith("norm.weight")} == {
        k for k in base_state if not k.endswith("norm.weight")
    }  # norms are re-drawn as ones
    assert model.lm_head.weight is model.model.embed_tokens.weight  # still tied
    assert not torch.allclose(logits(model.eval(), batch), logits(base, batch))
    std = model.model.layers[0].mlp.up_proj.weight.std().item()
    assert abs(std - model.config.initializer_range) < 0.002  # transformers' own init


def test_exact_round_trip(tiny_dir, method_specs, batch, tmp_path):
    model, _, module, _ = method_model(tiny_dir, method_specs["scratch"], seed=SEED)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    trained = logits(model.eval(), batch)
    methods.save_state(module.task_state(model), tmp_path / "scratch.safetensors")
    state = methods.load_state(tmp_path / "scratch.safetensors")
    assert "lm_head.weight" not in state, "tied embedding stored twice"
    loaded, *_ = method_model(tiny_dir, method_specs["scratch"], state)
    assert torch.equal(logits(loaded, batch), trained)


def test_a_few_steps_lower_the_validation_loss(tiny_dir, method_specs):
    model, tok, *_ = method_model(tiny_dir, method_specs["scratch"], seed=SEED)
    stats = train.train(model, tok, RECORDS, RECORDS[:4], settings(), seed=0)
    assert stats["val_loss_after"] < stats["val_loss_before"]
