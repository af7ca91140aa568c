"""Prompt tuning (Lester et al. 2021, Sec. 2): the frozen model reads [P; X], where P (n x d) is a soft
prompt of n trainable embeddings prepended to the embedded input X. Nothing else changes; P is all
that is stored. peft's PromptTuningConfig implements exactly this.

Init (Sec. 3.2, "sampled vocab"): each prompt vector starts as the embedding of a token drawn from
the 5,000 most common tokens (the paper's best init for tasks without class labels; BPE ids are
in merge order, so the lowest ids are the most frequent)."""

import torch
from peft import PromptTuningConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

from peftbench.model.peft_compat import fix_generation


def _config(hp, inference=False):
    return PromptTuningConfig(
        task_type="CAUSAL_LM", num_virtual_tokens=hp["num_virtual_tokens"], inference_mode=inference
    )


def attach(model, hp):
    model = fix_generation(get_peft_model(model, _config(hp)), shift_positions=True)  # base frozen; only P trains
    ids = torch.randint(0, hp["init_vocab"], (hp["num_virtual_tokens"],))
    with torch.no_grad():
        model.prompt_encoder["default"].embedding.weight.copy_(model.word_embeddings(ids))
    return model


def task_state(model):
    return get_peft_model_state_dict(model)  # {"prompt_embeddings": P}, n x d


def load(model, state, hp):
    model = fix_generation(get_peft_model(model, _config(hp, inference=True)), shift_positions=True)
    set_peft_model_state_dict(model, state)
    return model.requires_grad_(False).eval()
