"""(IA)^3 (Liu et al. 2022, Sec. 3.3): l_k, l_v, l_ff start at ones (identity), only they are stored, and
they fold into W_k, W_v, W_2."""

import copy

import torch
from conftest import logits, perturb
from test_method_prefix import PROMPTS, assert_generation_matches_forward

from peftbench import methods
from peftbench.model.assemble import method_model


def ia3_count(cfg):
    """Per layer: l_k and l_v (kv_dim = n_kv_heads x head_dim each) and l_ff (d_ff)."""
    kv_dim = cfg.num_key_value_heads * cfg.hidden_size // cfg.num_attention_heads
    return cfg.num_hidden_layers * (2 * kv_dim + cfg.intermediate_size)


def test_ia3_count_identity_round_trip_and_merge(tiny_dir, method_specs, tmp_path, batch, tiny):
    spec, (base, _) = method_specs["ia3"], tiny
    model, tok, module, _ = method_model(tiny_dir, spec)
    assert methods.count_parameters(model)[0] == ia3_count(base.config) == 2 * (32 + 32 + 128)
    assert all("ia3_l" in n for n, p in model.named_parameters() if p.requires_grad)
    assert all(torch.equal(p, torch.ones_like(p)) for p in model.parameters() if p.requires_grad)
    assert torch.equal(logits(model.eval(), batch), logits(base, batch))  # ones: the base model exactly

    perturb(model)
    model.eval()
    trained = logits(model, batch)
    assert not torch.allclose(trained, logits(base, batch))
    state = module.task_state(model)
    assert len(state) == 3 * 2 and all(k.endswith("ia3_l") for k in state)  # (k, v, ff) x layers
    assert sum(t.numel() for t in state.values()) == ia3_count(base.config)
    methods.save_state(state, tmp_path / "ia3.safetensors")

    unmerged_spec = copy.deepcopy(spec)
    unmerged_spec["hyperparameters"]["merge"] = False
    unmerged, *_ = method_model(tiny_dir, unmerged_spec, methods.load_state(tmp_path / "ia3.safetensors"))
    assert torch.equal(logits(unmerged, batch), trained)  # exact round trip
    merged, tok, *_ = method_model(tiny_dir, spec, methods.load_state(tmp_path / "ia3.safetensors"))
    assert not any("ia3_" in n for n, _ in merged.named_parameters())  # folded into the weights
    torch.testing.assert_close(logits(merged, batch), trained, atol=1e-5, rtol=1e-5)
    assert_generation_matches_forward(merged, tok, PROMPTS)
