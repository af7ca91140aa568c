"""LoRA and (IA)^3 on GPT-2 as the paper profiles configure them, on a tiny random GPT-2 (the architecture of
LoRA Table 3): W_q and W_v adapted separately out of the fused c_attn (Hu et al. 2021 Sec. 4.2 and the paper's
MergedLinear(enable_lora=[True, False, True])), h = W0 x + (alpha / r) B A x checked number by number, and
merge and task switch exact."""

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.pytorch_utils import Conv1D

from peftbench import config, methods
from peftbench.model import fused_qkv

D, LAYERS = 32, 2
IDS = torch.randint(0, 100, (2, 9), generator=torch.Generator().manual_seed(0))


def gpt2():
    torch.manual_seed(0)
    cfg = AutoConfig.for_model("gpt2", n_embd=D, n_layer=LAYERS, n_head=4, vocab_size=100, n_positions=32)
    return AutoModelForCausalLM.from_config(cfg).eval()


def profile_spec(files, method):
    cfg = config.load_profile(config.CONFIG / "config.yaml", *[config.CONFIG / f for f in files])
    return config.profile_methods(cfg)[method]


E2E_LORA = profile_spec(["paper-lora-e2e.yaml"], "lora")
SEED_IA3 = profile_spec(["paper-seed.yaml", "paper-seed-gpt2-medium.yaml"], "ia3")


def trained(module, hp, seed):
    """attach, then move every trainable parameter (stand-in for training; LoRA's B starts at zero)."""
    model = module.attach(gpt2(), hp)
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.3 * torch.randn_like(p))
    return model.eval()


def logits(model):
    with torch.no_grad():
        return model(IDS).logits


def qkv(model, x):
    """c_attn's three outputs for x, whichever form c_attn has (split, adapted, fused)."""
    attn = next(m for n, m in model.named_modules() if n.endswith("transformer.h.0.attn"))
    with torch.no_grad():
        return attn.c_attn(x).split(D, dim=-1)


def test_lora_on_gpt2_adapts_wq_and_wv_with_alpha_over_r():
    hp, module = E2E_LORA["hyperparameters"], methods.load_module(E2E_LORA["dir"])
    assert (hp["r"], hp["alpha"]) == (4, 32)  # Table 11
    base, model = gpt2(), trained(module, hp, seed=1)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all(".c_attn.q.lora_" in n or ".c_attn.v.lora_" in n for n in names)
    assert methods.count_parameters(model)[0] == LAYERS * 2 * hp["r"] * (D + D)  # r (d_in + d_out) per matrix

    x = torch.randn(3, 5, D)
    q0, k0, v0 = qkv(base, x)
    q, k, v = qkv(model, x)
    layer = model.base_model.model.transformer.h[0].attn.c_attn
    scale = hp["alpha"] / hp["r"]  # 8, not 1: alpha / r applied
    for got, plain, proj in ((q, q0, layer.q), (v, v0, layer.v)):
        A, B = proj.lora_A["default"].weight, proj.lora_B["default"].weight
        torch.testing.assert_close(got, plain + scale * x @ A.T @ B.T)  # h = W0 x + (alpha/r) B A x
    torch.testing.assert_close(k, k0, rtol=0, atol=0)  # W_k untouched


def test_ia3_on_gpt2_scales_keys_and_values_not_queries():
    hp, module = SEED_IA3["hyperparameters"], methods.load_module(SEED_IA3["dir"])
    base, model = gpt2(), trained(module, hp, seed=1)
    layer = model.base_model.model.transformer.h[0].attn.c_attn
    x = torch.randn(3, 5, D)
    (q0, k0, v0), (q, k, v) = qkv(base, x), qkv(model, x)
    torch.testing.assert_close(q, q0, rtol=0, atol=0)  # no l_q in (IA)^3
    torch.testing.assert_close(k, k0 * layer.k.ia3_l["default"].reshape(-1))  # l_k * K
    torch.testing.assert_close(v, v0 * layer.v.ia3_l["default"].reshape(-1))  # l_v * V
    assert methods.count_parameters(model)[0] == LAYERS * (D + D + 4 * D)  # l_k, l_v, l_ff (d_ff = 4d)


@pytest.mark.parametrize("spec", [E2E_LORA, SEED_IA3], ids=["lora", "ia3"])
def test_merge_fuses_c_attn_back_and_task_switch_is_exact(spec):
    """Merged: one Conv1D c_attn again (the base model's shape, no added latency), same logits as unmerged;
    switched in place from task 1 to task 2: the logits of task 2 loaded fresh."""
    hp, module = spec["hyperparameters"], methods.load_module(spec["dir"])
    states = [module.task_state(trained(module, hp, seed)) for seed in (1, 2)]
    unmerged = [logits(module.load(gpt2(), s, {**hp, "merge": False})) for s in states]
    merged = module.load(gpt2(), states[0], hp)
    assert isinstance(merged.transformer.h[0].attn.c_attn, Conv1D)
    assert not isinstance(merged.transformer.h[1].attn.c_attn, fused_qkv.SplitQKV)
    torch.testing.assert_close(logits(merged), unmerged[0], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(unmerged[0], unmerged[1], atol=1e-3)  # the two tasks differ
    module.switch(merged, states[0], states[1], hp)
    torch.testing.assert_close(logits(merged), unmerged[1], rtol=1e-5, atol=1e-5)
    module.switch(merged, states[1], states[0], hp)
    torch.testing.assert_close(logits(merged), unmerged[0], rtol=1e-5, atol=1e-5)


def test_split_and_fuse_are_the_same_function():
    model, ref = gpt2(), logits(gpt2())
    fused_qkv.split(model, "c_attn")
    assert isinstance(model.transformer.h[0].attn.c_attn, fused_qkv.SplitQKV)
    torch.testing.assert_close(logits(model), ref, rtol=1e-5, atol=1e-5)
    fused_qkv.fuse(model)
    assert torch.equal(logits(model), ref)
    with pytest.raises(ValueError, match="no Conv1D module of the model is named 'qkv'"):
        fused_qkv.split(model, "qkv")
