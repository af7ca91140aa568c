"""LoRA (Hu et al. 2021, Sec. 4.1): h = W0 x + (alpha/r) B A x, A ~ Kaiming, B = 0, so the model is
unchanged at initialisation. peft's LoraConfig implements exactly this; we store only A and B."""
import torch
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from transformers.pytorch_utils import Conv1D

from peftbench.methods import copy_task_state


def _config(hp):
    return LoraConfig(r=hp["r"], lora_alpha=hp["alpha"], lora_dropout=hp.get("dropout", 0.0),
                      target_modules=list(hp["target_modules"]), bias="none", task_type="CAUSAL_LM")


def attach(model, hp):
    return get_peft_model(model, _config(hp))      # freezes the base; only lora_A / lora_B train


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
    return model.merge_and_unload().eval()


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
            module = model.get_submodule(name)
            A2, B2 = new[name]
            flip = isinstance(module, Conv1D)          # GPT-2's Conv1D stores W transposed
            module.weight -= scale * ((B @ A).T if flip else B @ A)
            module.weight += scale * ((B2 @ A2).T if flip else B2 @ A2)
    return model


def _pairs(state):
    """{module name in the merged model: (A, B)} from peft's keys '<prefix>.<module>.lora_A.weight'."""
    pairs = {}
    for key, A in state.items():
        if key.endswith(".lora_A.weight"):
            name = key[:-len(".lora_A.weight")].removeprefix("base_model.model.")
            pairs[name] = (A, state[key.replace(".lora_A.", ".lora_B.")])
    return pairs
