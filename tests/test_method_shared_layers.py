"""Shared lower layers, FT-Top2 (Hu et al. 2021, Sec. 5.1, after Li & Liang 2021): only the top k blocks train."""

import pytest
import torch
from conftest import logits, spec_with
from test_train import RECORDS, settings

from peftbench import methods
from peftbench.model.assemble import method_model
from peftbench.stages import train


def block_count(config):
    """Parameters of one Llama block: W_q, W_o (d x d), W_k, W_v (d x kv_dim), gate/up/down (3 d d_ff), 2 RMSNorms."""
    d, d_ff = config.hidden_size, config.intermediate_size
    kv_dim = config.num_key_value_heads * (d // config.num_attention_heads)
    return 2 * d * d + 2 * d * kv_dim + 3 * d * d_ff + 2 * d


def shared_layers_count(config, k):
    """|theta| = k * params_per_block + d (the final norm); the embedding and the tied head are shared."""
    return k * block_count(config) + config.hidden_size


@pytest.mark.parametrize("k, expected", [(1, 37_056), (2, 74_048)])
def test_only_the_top_blocks_and_final_norm_train(tiny_dir, method_specs, tiny, batch, k, expected):
    base, _ = tiny
    model, _, module, _ = method_model(tiny_dir, spec_with(method_specs["shared-layers"], top_blocks=k))
    trainable, _ = methods.count_parameters(model)
    assert trainable == shared_layers_count(model.config, k) == expected
    top = [f"model.layers.{i}." for i in range(2 - k, 2)]
    assert all(
        n.startswith(tuple(top)) or n == "model.norm.weight" for n, p in model.named_parameters() if p.requires_grad
    )
    assert not model.model.embed_tokens.weight.requires_grad and model.lm_head.weight is model.model.embed_tokens.weight
    assert torch.equal(logits(model, batch), logits(base, batch))  # nothing added: the base model


def test_exact_round_trip_stores_only_the_top(tiny_dir, method_specs, tiny, batch, tmp_path):
    base, _ = tiny
    spec = spec_with(method_specs["shared-layers"], top_blocks=1)
    model, _, module, _ = method_model(tiny_dir, spec)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    trained = logits(model, batch)
    assert not torch.allclose(trained, logits(base, batch))
    state = module.task_state(model)
    assert not any(k.startswith("model.layers.0.") for k in state)  # the shared bottom is not stored
    assert sum(t.numel() for t in state.values()) == shared_layers_count(model.config, 1)
    methods.save_state(state, tmp_path / "top.safetensors")
    loaded, *_ = method_model(tiny_dir, spec, methods.load_state(tmp_path / "top.safetensors"))
    assert torch.equal(logits(loaded, batch), trained)
    with pytest.raises(ValueError, match="missing"):
        method_model(tiny_dir, spec_with(spec, top_blocks=2), state)


def test_a_few_steps_lower_the_validation_loss(tiny_dir, method_specs):
    model, tok, *_ = method_model(tiny_dir, spec_with(method_specs["shared-layers"], top_blocks=1))
    stats = train.train(model, tok, RECORDS, RECORDS[:4], settings(), seed=0)
    assert stats["val_loss_after"] < stats["val_loss_before"]
