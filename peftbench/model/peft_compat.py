"""Two fixes to peft 0.21.2's prepare_inputs_for_generation under transformers 5.24, for the peft
methods that put virtual tokens in front of the input (prefix tuning, prompt tuning). Written by
hand because no released peft has them yet; drop this module when peft catches up.

1. transformers renamed generate's `past_key_values` to `cache`; peft still reads the old name, sees
   no cache, and so its prefix went nowhere (prefix tuning) or P was re-inserted before every decoded
   token (prompt tuning). We show peft the cache under the old name and hand it back under the new.
2. (prompt tuning) peft drops position_ids, so in a left-padded batch (lm-eval's) a row's real tokens
   sit further from P than in training. We restore training's positions: P at 0..n-1, tokens from n."""

import functools

import torch


def fix_generation(model, shift_positions=False):
    n = model.active_peft_config.num_virtual_tokens
    peft_prepare, base_prepare = model.prepare_inputs_for_generation, model.base_model_prepare_inputs_for_generation

    def base_prepare_old_name(*args, **kwargs):
        inputs = base_prepare(*args, **kwargs)
        inputs["past_key_values"] = inputs.pop("cache", None)
        return inputs

    @functools.wraps(peft_prepare)
    def prepare(*args, position_ids=None, **kwargs):
        if not shift_positions and position_ids is not None:
            kwargs["position_ids"] = position_ids
        model.base_model_prepare_inputs_for_generation = base_prepare_old_name  # for this call only
        try:
            inputs = peft_prepare(*args, **kwargs)
        finally:
            model.base_model_prepare_inputs_for_generation = base_prepare
        inputs["cache"] = inputs.pop("past_key_values")
        if shift_positions and position_ids is not None:  # generate's, from the attention mask
            embeds = inputs.get("inputs_embeds")
            new = embeds.shape[1] - n if embeds is not None else inputs["input_ids"].shape[1]
            pos = position_ids[:, -new:] + n
            if embeds is not None:  # prefill: P is in front of the prompt
                pos = torch.cat([torch.arange(n, device=pos.device).expand(pos.shape[0], n), pos], 1)
            inputs["position_ids"] = pos
        return inputs

    model.prepare_inputs_for_generation = prepare
    return model
