"""Early-exit greedy decoding (peftbench.stages.greedy): an answer leaves the batch once it has ended, and the text
lm-eval keeps is generate()'s, token for token, for every position-wise method, with and without grouped prefill,
and for a method that is position-wise only once its prompt is in the cache (LoReFT, peft's prompt and prefix
tuning), prefilled in one forward."""

from collections import Counter

import pytest
import torch
from lm_eval.models.utils_hf import stop_sequences_criteria

from peftbench import config
from peftbench.data import build
from peftbench.stages import evaluate, greedy
from tests.test_prefill import CHUNKED, PROMPTS, deployed_model

NEW = 12
DECODING_ONLY = [  # position-wise after the prompt's forward, not in it: no grouped prefill
    m for m, spec in config.discover_methods().items() if spec.get("position_wise_decoding") and m not in CHUNKED
]


def test_the_methods_that_decode_with_early_exit_only_are_loreft_and_peft_prompt_learning():
    assert sorted(DECODING_ONLY) == ["loreft", "prefix", "prompt-tuning"]


def encoded(tok):
    tok.padding_side = "left"
    return tok(PROMPTS, return_tensors="pt", padding=True, add_special_tokens=False)


def kept(tok, out, width, stops):
    """What lm-eval keeps of each row: the decoded answer cut at its first stop sequence."""
    texts = tok.batch_decode(out[:, width:], skip_special_tokens=True)
    for s in stops:
        texts = [t.split(s)[0] for t in texts]
    return texts


def stops_that_split_the_batch(model, tok, enc):
    """A stop string that ends some answers early and others not at all, from what the model generates."""
    out = model.generate(**enc, max_new_tokens=NEW, do_sample=False, pad_token_id=tok.pad_token_id)
    texts = tok.batch_decode(out[:, enc.input_ids.shape[1] :], skip_special_tokens=True)
    counts = Counter(c for t in texts for c in set(t) if not c.isspace())
    return next(([c] for c, n in counts.most_common() if 1 < n < len(texts)), None)


def model_with_split_answers(tiny_dir, spec):
    """The deployed model, its tokenizer and a splitting stop; a stand-in state that is too strong makes every
    answer the same (LoReFT, Houlsby at scale 0.5), so a weaker one is tried next."""
    for scale in (0.5, 0.1):
        model, tok = deployed_model(tiny_dir, spec, scale)
        stops = stops_that_split_the_batch(model, tok, encoded(tok))
        if stops:
            return model, tok, stops
    pytest.skip("the tiny model's answers share no character that splits the batch")


@pytest.mark.parametrize("method", CHUNKED + DECODING_ONLY)
def test_early_exit_keeps_generates_answers(tiny_dir, method_specs, method):
    model, tok, stops = model_with_split_answers(tiny_dir, method_specs[method])
    enc = encoded(tok)
    width = enc.input_ids.shape[1]
    # an end-of-sequence token some answers reach: generate() pads those rows after it
    first = model.generate(**enc, max_new_tokens=NEW, do_sample=False, pad_token_id=tok.pad_token_id)
    model.generation_config.eos_token_id = int(first[1, width + 3])
    suppress = [int(first[0, width])]  # the first token may not be row 0's usual first choice
    ref = model.generate(
        **enc,
        max_length=width + NEW,
        stopping_criteria=stop_sequences_criteria(tok, stops, width, len(PROMPTS)),
        pad_token_id=tok.pad_token_id,
        do_sample=False,
        begin_suppress_tokens=suppress,
    )
    for tokens in (None, 40) if method in CHUNKED else (None,):  # prefilled here; the cache from grouped prefill
        cache = None if tokens is None else evaluate.grouped_prefill(model, enc.input_ids, enc.attention_mask, tokens)
        calls = []
        runs = model.get_base_model() if greedy.VirtualTokens.applies(model) else model  # what decode() calls
        hook = runs.register_forward_pre_hook(
            lambda m, a, kw: calls.append(len(kw["input_ids" if "input_ids" in kw else "inputs_embeds"])),
            with_kwargs=True,
        )
        try:
            for share in (0.0, 0.25):  # at once; in groups (the default)
                got = greedy.decode(
                    model, tok, enc.input_ids, enc.attention_mask, width + NEW, stops, cache, suppress, share
                )
                assert kept(tok, got, width, stops) == kept(tok, ref, width, stops)
                if cache is not None:  # it was extended in place: the next call starts from a fresh one
                    cache = evaluate.grouped_prefill(model, enc.input_ids, enc.attention_mask, tokens)
        finally:
            hook.remove()
        assert min(calls) < len(PROMPTS), "no answer left the batch: the test would not show the early exit"


def test_early_exit_only_where_generate_would_apply_no_other_processor(tiny):
    model, _ = tiny
    mask = torch.ones(1, 3, dtype=torch.long)
    assert greedy.applies(model, {"do_sample": False, "attention_mask": mask, "begin_suppress_tokens": [1]})
    assert not greedy.applies(model, {"do_sample": True, "attention_mask": mask})
    assert not greedy.applies(model, {"do_sample": False, "attention_mask": mask, "num_beams": 4})
    model.generation_config.repetition_penalty = 1.2
    assert not greedy.applies(model, {"do_sample": False, "attention_mask": mask})


def test_lm_eval_scores_the_same_with_early_exit(tiny_dir, method_specs, tmp_path):
    model, tok = deployed_model(tiny_dir, method_specs["lora"])
    build.build(config.load_task("summarization"), {"train": 4, "validation": 2, "test": 10}, tmp_path / "t")
    task = config.load_task("summarization")["dir"]
    runs = {
        early: evaluate.run(model, tok, task, tmp_path / "t" / "test.jsonl", batch_size=10, position_wise=early)
        for early in (False, True)
    }
    resps = {e: [s["filtered_resps"] for s in r[1]["peftbench_summarization"]] for e, r in runs.items()}
    assert resps[False] == resps[True]
    assert evaluate.scores(runs[False][0], "summarization") == evaluate.scores(runs[True][0], "summarization")
