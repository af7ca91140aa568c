"""Greedy decoding in which an answer leaves the batch once it has ended (written here: transformers' generate()
has no such mode, and lm-eval's stop criterion ends only the whole batch).

generate() decodes a batch until its last answer ends: every answer already past its stop sequence (`until`, e.g.
"\\n") is computed on, token after token, and lm-eval cuts the text at the first stop afterwards. On the default
splits half of a 64-answer batch's decoding steps went to such rows (summarization: answers of 8-80 tokens, mean
36, decoded for 80). Here a row is dropped from the batch, its cache rows with it, as soon as its answer has ended:
its end-of-sequence token, or a stop sequence in its decoded text (lm-eval's own post-processing then cuts there).

The text lm-eval keeps is the same, token for token: greedy decoding is row by row, and on the CPU each row's
logits do not depend on which other rows share its batch (the matrix multiplies and the attention are row-wise;
checked bit for bit in tests/test_greedy.py, and on the default model's 64-example test splits). Used only where
that holds by construction: greedy decoding (no sampling, one beam), no logits processor but the first-token
suppression lm-eval's protocol sets (peftbench.model.generate.answer_start_suppressed), and a model that, once its
prompt is in the cache, computes each new token from the tokens before it alone (method.yaml `chunked_prefill`, or
`position_wise_decoding`: LoReFT, whose prompt is prefilled here in one forward, so that its first and last
positions are the prompt's; peft's prompt and prefix tuning, whose virtual positions are in the cache once the
prompt's forward has run, each forward made as peft's generate() makes it: VirtualTokens below)."""

from __future__ import annotations

import torch

# generation_config fields whose default is "no logits processor": anything else set goes to generate()
_NEUTRAL = {
    "repetition_penalty": (None, 1.0),
    "no_repeat_ngram_size": (None, 0),
    "bad_words_ids": (None,),
    "suppress_tokens": (None,),
    "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,),
    "min_length": (None, 0),
    "min_new_tokens": (None, 0),
    "sequence_bias": (None,),
    "encoder_repetition_penalty": (None, 1.0),
    "exponential_decay_length_penalty": (None,),
    "num_beams": (None, 1),
    "do_sample": (None, False),
}
_KWARGS = {"do_sample", "begin_suppress_tokens", "attention_mask", "cache", "temperature"}


def applies(model: torch.nn.Module, generation_kwargs: dict) -> bool:
    """Whether this batch can decode here with exactly generate()'s greedy tokens (see the module docstring)."""
    if set(generation_kwargs) - _KWARGS or generation_kwargs.get("do_sample"):
        return False
    if generation_kwargs.get("attention_mask") is None:
        return False
    gc = getattr(model, "generation_config", None)
    return gc is not None and all(getattr(gc, k, None) in ok for k, ok in _NEUTRAL.items())


def _eos_ids(model) -> set[int]:
    eos = model.generation_config.eos_token_id
    return set() if eos is None else {eos} if isinstance(eos, int) else set(eos)


def _select_rows(cache, keep: torch.Tensor) -> None:
    if hasattr(cache, "batch_select_indices"):
        cache.batch_select_indices(keep)
    else:  # older cache layouts: layer by layer
        for layer in cache.layers:
            layer.batch_select_indices(keep)


class VirtualTokens:
    """One forward of a peft prompt-tuning or prefix-tuning model, as peft's generate() makes it (peft's
    prepare_inputs_for_generation with peftbench.model.peft_compat's fixes), so that greedy decoding can run it step
    by step. Both put n virtual positions 0..n-1 in front of every row, which every forward's attention mask covers,
    and a row's own tokens at n + their own positions:

        prompt tuning, prefill:   inputs_embeds [P; E(prompt)] (P: n trained embeddings)
        prefix tuning, prefill:   the prompt, on a cache that holds the prefix's n keys and values in every layer
        either, a step:           the new token (the virtual positions are in the cache)

    After the prefill the base model alone runs, position by position, so an answer may leave the batch."""

    def __init__(self, model):
        self.model, self.base = model, model.get_base_model()
        self.n = model.active_peft_config.num_virtual_tokens
        self.prefix = model.active_peft_config.peft_type == "PREFIX_TUNING"

    @staticmethod
    def applies(model) -> bool:
        config = getattr(model, "active_peft_config", None)
        return config is not None and config.peft_type in ("PROMPT_TUNING", "PREFIX_TUNING")

    def __call__(self, input_ids, attention_mask, position_ids, cache, **kwargs):
        rows = len(input_ids)
        mask = torch.cat([attention_mask.new_ones(rows, self.n), attention_mask], dim=1)
        inputs = {"input_ids": input_ids, "position_ids": position_ids + self.n, "cache": cache}
        if cache is None and self.prefix:
            inputs["cache"] = self.model.get_prompt(batch_size=rows, max_cache_len=-1)
        elif cache is None:
            embeds = self.model.word_embeddings(input_ids)
            virtual = torch.arange(self.n, device=input_ids.device).expand(rows, self.n)
            inputs = {
                "inputs_embeds": torch.cat([self.model.get_prompt(batch_size=rows).to(embeds.dtype), embeds], dim=1),
                "position_ids": torch.cat([virtual, inputs["position_ids"]], dim=1),
                "cache": None,
            }
        return self.base(attention_mask=mask, **inputs, **kwargs)


@torch.no_grad()
def decode(
    model: torch.nn.Module,
    tokenizer,
    context: torch.Tensor,
    attention_mask: torch.Tensor,
    max_length: int,
    stop: list[str],
    cache=None,
    begin_suppress_tokens: list[int] | None = None,
    leave_share: float = 0.25,
) -> torch.Tensor:
    """generate()'s output for a left-padded greedy batch ([rows, width + new tokens], ended rows padded with the
    pad token), computing each row only until its answer has ended. `cache`: the prompts' cache without their last
    token (grouped prefill), or None to prefill here. Ended rows leave the batch once they are `leave_share` of it
    (each removal copies the whole cache; 0: at once)."""
    rows, width = context.shape
    forward = VirtualTokens(model) if VirtualTokens.applies(model) else model
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = torch.full((rows, max_length), pad, dtype=context.dtype, device=context.device)
    out[:, :width] = context
    eos, stops = _eos_ids(model), [s for s in stop if s]
    mask = attention_mask.long()
    position = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)  # as generate() derives it from the mask
    active = torch.arange(rows, device=context.device)  # the rows still in the batch
    ended = torch.zeros(rows, dtype=torch.bool, device=context.device)  # of those, the ones whose answer has ended
    ids, pos = (context, position) if cache is None else (context[:, -1:], position[:, -1:])
    length = width
    while length < max_length:
        output = forward(
            input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache, use_cache=True, logits_to_keep=1
        )
        cache = output.past_key_values if getattr(output, "cache", None) is None else output.cache
        scores = output.logits[:, -1, :].float()
        if length == width and begin_suppress_tokens:
            scores[:, begin_suppress_tokens] = -float("inf")
        token = scores.argmax(-1)
        live = ~ended
        out[active[live], length] = token[live]  # an ended row still in the batch writes nothing more
        length += 1
        for i in live.nonzero().squeeze(1).tolist():
            r, t = int(active[i]), int(token[i])
            text = tokenizer.decode(out[r, width:length], skip_special_tokens=True)
            ended[i] = t in eos or any(s in text for s in stops)
        if ended.all():
            break
        if ended.sum() > 0 and ended.sum() >= leave_share * len(active):
            idx = (~ended).nonzero().squeeze(1)
            active, token, mask, pos, ended = active[idx], token[idx], mask[idx], pos[idx], ended[idx]
            _select_rows(cache, idx)
        mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=1)
        ids, pos = token[:, None], pos[:, -1:] + 1
    return out[:, :length]
