"""Houlsby adapters (Houlsby et al. 2019, Sec. 2.1 / Fig. 2) and the Adapter-L placement (Hu et al. 2021)."""

import pytest
import torch
from conftest import logits, perturb, spec_with
from test_train import RECORDS, settings

from peftbench import methods
from peftbench.model.assemble import method_model
from peftbench.stages import train


def houlsby_count(config, hp):
    """|theta| = n_adapters * L * (2 d m + m + d)  +  [Adapter-L] n_adapters * L * 2 d  +  (2 L + 1) d

    per adapter: W_down (d x m) and W_up (m x d) with biases m and d; Adapter-L adds its LayerNorm (weight and
    bias, 2 d); n_adapters = 2 per block (after attention and after the MLP) or 1 (mlp_only); the trained
    RMSNorms are the two of each block plus the final one, d weights each (no bias in Llama's RMSNorm)."""
    d, m, L = config.hidden_size, hp["size"], config.num_hidden_layers
    mlp_only = hp["placement"] == "mlp_only"
    n_adapters = 1 if mlp_only else 2
    return n_adapters * L * (2 * d * m + m + d + (2 * d if mlp_only else 0)) + (2 * L + 1) * d


@pytest.mark.parametrize("placement, expected", [("houlsby", 33_600), ("mlp_only", 17_216)])
def test_only_adapters_and_norms_train_and_their_count_is_closed_form(tiny_dir, method_specs, placement, expected):
    spec = spec_with(method_specs["houlsby"], placement=placement)
    model, *_ = method_model(tiny_dir, spec)
    trainable, _ = methods.count_parameters(model)
    assert trainable == houlsby_count(model.config, spec["hyperparameters"]) == expected
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all(".adapter." in n or n.endswith("layernorm.weight") or n == "model.norm.weight" for n in names)
    wrapped = {n for n, mod in model.named_modules() if type(mod).__name__ == "Adapted"}
    sites = ["self_attn.o_proj", "mlp.down_proj"] if placement == "houlsby" else ["mlp.down_proj"]
    assert wrapped == {f"model.layers.{i}.{s}" for i in range(2) for s in sites}


@pytest.mark.parametrize("placement", ["houlsby", "mlp_only"])
def test_identity_at_init_and_exact_round_trip(tiny_dir, method_specs, tiny, batch, tmp_path, placement):
    spec = spec_with(method_specs["houlsby"], placement=placement)
    base, _ = tiny
    model, _, module, _ = method_model(tiny_dir, spec)
    # W_up = 0 and zero biases: h + W_up f(W_down h) = h, the base model exactly
    assert torch.equal(logits(model.eval(), batch), logits(base, batch))

    perturb(model)
    trained = logits(model, batch)
    assert not torch.allclose(trained, logits(base, batch))
    state = module.task_state(model)
    assert sum(t.numel() for t in state.values()) == houlsby_count(model.config, spec["hyperparameters"])
    methods.save_state(state, tmp_path / "houlsby.safetensors")
    loaded, *_ = method_model(tiny_dir, spec, methods.load_state(tmp_path / "houlsby.safetensors"))
    assert torch.equal(logits(loaded, batch), trained)


def test_load_refuses_a_state_of_other_hyperparameters(tiny_dir, method_specs):
    model, _, module, _ = method_model(tiny_dir, method_specs["houlsby"])
    state = module.task_state(model)
    with pytest.raises(ValueError, match="missing"):
        method_model(tiny_dir, spec_with(method_specs["houlsby"], placement="mlp_only"), state)


def test_a_few_steps_lower_the_validation_loss(tiny_dir, method_specs):
    model, tok, *_ = method_model(tiny_dir, method_specs["houlsby"])
    stats = train.train(model, tok, RECORDS, RECORDS[:4], settings(), seed=0)
    assert stats["val_loss_after"] < stats["val_loss_before"]


def _profile_spec(files, method):
    from peftbench import config

    cfg = config.load_profile(config.CONFIG / "config.yaml", *[config.CONFIG / f for f in files])
    return config.profile_methods(cfg)[method]


def test_adapter_l_is_lins_adapter_on_each_gpt2_block_output():
    """LoRA Table 3's Adapter-L as the E2E profile configures it, on a tiny GPT-2: block(x) + W_up ReLU(W_down
    LN(block(x))) after the MLP's residual add (Li & Liang's adapter_design 1, after Lin et al. 2020)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    spec = _profile_spec(["paper-lora-e2e.yaml"], "adapter-l-370k")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(
        AutoConfig.for_model("gpt2", n_embd=32, n_layer=2, n_head=4, vocab_size=100, n_positions=32)
    ).eval()
    x = torch.randn(2, 5, 32)
    block = model.transformer.h[1]
    with torch.no_grad():
        plain = block(x)
        plain = plain[0] if isinstance(plain, tuple) else plain
    model = methods.load_module(spec["dir"]).attach(model, spec["hyperparameters"])
    perturb(model)
    assert methods.count_parameters(model)[0] == 2 * (2 * 32 * 6 + 6 + 32 + 2 * 32)  # W_down, W_up, biases, LN
    with torch.no_grad():
        out = block(x)
        out = out[0] if isinstance(out, tuple) else out
        a = block.adapter
        expected = plain + a.up(
            torch.relu(a.down(torch.nn.functional.layer_norm(plain, (32,), a.norm.weight, a.norm.bias)))
        )
    torch.testing.assert_close(out, expected)


def test_adapter_s_is_llm_adapters_series_adapter(tiny_dir):
    """ReFT Table 1's Adapter-S as the ReFT profile configures it (module names: the tiny Llama's): after the MLP,
    m + W_up tanh(W_down m), no biases, no LayerNorm; 2 d m per block."""
    spec = _profile_spec(["paper-reft-commonsense.yaml"], "adapter-s")
    model, tok, module, _ = method_model(tiny_dir, spec)
    d, L, m = model.config.hidden_size, model.config.num_hidden_layers, spec["hyperparameters"]["size"]
    assert methods.count_parameters(model)[0] == L * 2 * d * m
    perturb(model)
    site = model.model.layers[0].mlp.down_proj
    h = torch.randn(3, model.config.intermediate_size)
    with torch.no_grad():
        mlp_out = site.base_layer(h)
        expected = mlp_out + torch.tanh(mlp_out @ site.adapter.down.weight.T) @ site.adapter.up.weight.T
        torch.testing.assert_close(site(h), expected)
    assert site.adapter.down.bias is None and isinstance(site.adapter.norm, torch.nn.Identity)
