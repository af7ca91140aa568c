"""Prompt tuning (Lester et al. 2021, Sec. 2): the frozen model reads [P; X], where P (n x d) is a soft
prompt of n trainable embeddings prepended to the embedded input X. Nothing else changes; P is all
that is stored. peft's PromptTuningConfig implements exactly this.

Init (Sec. 3.2, "sampled vocab"): each prompt vector starts as the embedding of a token drawn from
the 5,000 most common tokens (the paper's best init for tasks without class labels; BPE ids are
in merge order, so the lowest ids are the most frequent)."""
import functools

import torch
from peft import PromptTuningConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict


def _config(hp, inference=False):
    return PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=hp["num_virtual_tokens"],
                              inference_mode=inference)


def attach(model, hp):
    model = _fix_generation(get_peft_model(model, _config(hp)))   # base frozen; only P trains
    ids = torch.randint(0, hp["init_vocab"], (hp["num_virtual_tokens"],))
    with torch.no_grad():
        model.prompt_encoder["default"].embedding.weight.copy_(model.word_embeddings(ids))
    return model


def task_state(model):
    return get_peft_model_state_dict(model)                  # {"prompt_embeddings": P}, n x d


def load(model, state, hp):
    model = _fix_generation(get_peft_model(model, _config(hp, inference=True)))
    set_peft_model_state_dict(model, state)
    return model.requires_grad_(False).eval()


def _fix_generation(model):
    """Two fixes to peft 0.21.2's prepare_inputs_for_generation under transformers 5.24.

    1. transformers renamed generate's `past_key_values` to `cache`; peft still reads the old name, sees
       no cache, and re-inserts P before every decoded token. We show peft the cache under the old name.
    2. peft drops position_ids, so in a left-padded batch (lm-eval's) a row's real tokens sit further
       from P than in training. We restore training's positions: P at 0..n-1, real tokens from n."""
    n = model.active_peft_config.num_virtual_tokens
    peft_prepare, base_prepare = model.prepare_inputs_for_generation, model.base_model_prepare_inputs_for_generation

    def base_prepare_old_name(*args, **kwargs):
        inputs = base_prepare(*args, **kwargs)
        inputs["past_key_values"] = inputs.pop("cache", None)
        return inputs

    @functools.wraps(peft_prepare)
    def prepare(*args, position_ids=None, **kwargs):
        model.base_model_prepare_inputs_for_generation = base_prepare_old_name    # for this call only
        try:
            inputs = peft_prepare(*args, **kwargs)
        finally:
            model.base_model_prepare_inputs_for_generation = base_prepare
        inputs["cache"] = inputs.pop("past_key_values")
        if position_ids is not None:                         # generate's, from the attention mask
            embeds = inputs.get("inputs_embeds")
            new = embeds.shape[1] - n if embeds is not None else inputs["input_ids"].shape[1]
            pos = position_ids[:, -new:] + n
            if embeds is not None:                           # prefill: P is in front of the prompt
                pos = torch.cat([torch.arange(n, device=pos.device).expand(pos.shape[0], n), pos], 1)
            inputs["position_ids"] = pos
        return inputs

    model.prepare_inputs_for_generation = prepare
    return model
