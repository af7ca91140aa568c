"""LoRA (Hu et al. 2021, Sec. 4.1): h = W0 x + (alpha/r) B A x, A ~ Kaiming, B = 0, so the model is
unchanged at initialisation. peft's LoraConfig implements exactly this; we store only A and B.

`fused_qkv: c_attn` (GPT-2) first splits the fused q/k/v projection into W_q, W_k, W_v (peftbench.model.fused_qkv),
so that target_modules [c_attn.q, c_attn.v] adapts W_q and W_v alone, each with its own A and B, as the
paper's code does (loralib MergedLinear, enable_lora=[True, False, True]); merged, c_attn is one Conv1D again."""

import torch
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

from peftbench.methods import copy_task_state
from peftbench.model import fused_qkv


def _config(hp):
    return LoraConfig(
        r=hp["r"],
        lora_alpha=hp["alpha"],
        lora_dropout=hp.get("dropout", 0.0),
        target_modules=list(hp["target_modules"]),
        bias="none",
        task_type="CAUSAL_LM",
    )


def attach(model, hp):
    if hp.get("fused_qkv"):
        fused_qkv.split(model, hp["fused_qkv"])
    return get_peft_model(model, _config(hp))  # freezes the base; only lora_A / lora_B train


def task_state(model):
    return get_peft_model_state_dict(model)


def load(model, state, hp):
    model = attach(model, hp)
    result = set_peft_model_state_dict(model, state)
    if result.unexpected_keys:
        raise ValueError(f"LoRA state has unexpected keys {result.unexpected_keys}")
    return merge(model) if hp.get("merge", True) else model.eval()


def merge(model):
    """W0 <- W0 + (alpha/r) B A: deployment with no extra latency (Sec. 4.1)."""
    return fused_qkv.fuse(model.merge_and_unload()).eval()


def switch(model, old_state, new_state, hp):
    """Sec. 4.1: "When we need to switch to another downstream task, we can recover W0 by subtracting BA
    and then adding a different B'A'": W <- W - (alpha/r) B A + (alpha/r) B' A', in place, per adapted
    matrix. Unmerged (merge: false), only A and B are swapped."""
    if not hp.get("merge", True):
        return copy_task_state(model, new_state)
    scale = hp["alpha"] / hp["r"]
    old, new = _pairs(old_state), _pairs(new_state)
    if old.keys() != new.keys():
        raise ValueError(f"LoRA states adapt different matrices: {sorted(old.keys() ^ new.keys())}")
    with torch.no_grad():
        for name, (A, B) in old.items():
            W, _ = fused_qkv.weight(model, name)  # (out, in), also a q or v slice of a fused c_attn
            A2, B2 = new[name]
            W -= scale * (B @ A)
            W += scale * (B2 @ A2)
    return model


def _pairs(state):
    """{module name in the merged model: (A, B)} from peft's keys '<prefix>.<module>.lora_A.weight'."""
    pairs = {}
    for key, A in state.items():
        if key.endswith(".lora_A.weight"):
            name = key[: -len(".lora_A.weight")].removeprefix("base_model.model.")
            pairs[name] = (A, state[key.replace(".lora_A.", ".lora_B.")])
    return pairs
