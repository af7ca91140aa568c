"""Grouped prefill (peftbench.stages.evaluate.grouped_prefill): the prompts' cache computed a few prompts at a time
must give the generation one padded forward of the whole batch gives, for every method that says chunked_prefill."""

import pytest
import torch

from peftbench import config, methods
from peftbench.costs.latency_overhead import deployed, fake_task_state
from peftbench.data import build
from peftbench.model import base_model
from peftbench.stages import evaluate

PROMPTS = [
    "Translate English to Spanish.\nEnglish: In the beginning God created the heaven and the earth.\nSpanish:",
    "Hi",
    "Summarize the text in one sentence.\nText: A cat sat on the mat all day long.\nSummary:",
    "Question: who?\nAnswer:",
    "Text: The quick brown fox jumps over the lazy dog, twice.\nSummary:",
    "English: Light.\nSpanish:",
    "Question: where is the cat, and why is it on the mat?\nAnswer:",
]
CHUNKED = [m for m, spec in config.discover_methods().items() if spec.get("chunked_prefill")]


def deployed_model(tiny_dir, spec, scale=0.5):
    """The method's deployed model with a task state that is not the identity (a stand-in for a trained one)."""
    base, tok = base_model.load(tiny_dir)
    module, hp = methods.load_module(spec["dir"]), spec["hyperparameters"]
    return deployed(module, base, hp, fake_task_state(module, base, hp, scale=scale)), tok


def greedy(model, tok, tokens=None):
    tok.padding_side = "left"
    enc = tok(PROMPTS, return_tensors="pt", padding=True, add_special_tokens=False)
    cache = None if tokens is None else evaluate.grouped_prefill(model, enc.input_ids, enc.attention_mask, tokens)
    assert tokens is None or cache is not None
    out = model.generate(
        **enc,
        cache=cache,
        max_new_tokens=6,
        do_sample=False,
        pad_token_id=tok.pad_token_id,
        output_scores=True,
        return_dict_in_generate=True,
    )
    return out.sequences, torch.stack(out.scores)


def test_the_methods_that_may_prefill_in_groups_are_the_position_wise_ones():
    assert set(CHUNKED) == {"full", "scratch", "shared-layers", "zero-shot", "few-shot", "lora", "ia3", "houlsby"}


@pytest.mark.parametrize("method", CHUNKED)
def test_grouped_prefill_generates_what_one_padded_forward_does(tiny_dir, method_specs, method):
    model, tok = deployed_model(tiny_dir, method_specs[method])
    padded, padded_scores = greedy(model, tok)
    for tokens in (1, 40):  # a prompt per group; groups of several short prompts
        grouped, grouped_scores = greedy(model, tok, tokens)
        assert torch.equal(grouped, padded)
        torch.testing.assert_close(grouped_scores, padded_scores, rtol=1e-4, atol=1e-4)


def test_grouped_prefill_caches_the_real_tokens_where_the_padded_forward_does(tiny_dir):
    model, tok = base_model.load(tiny_dir)
    tok.padding_side = "left"
    enc = tok(PROMPTS, return_tensors="pt", padding=True, add_special_tokens=False)
    ids, mask = enc.input_ids[:, :-1], enc.attention_mask[:, :-1]
    whole = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0), use_cache=True)
    whole = whole.past_key_values if getattr(whole, "cache", None) is None else whole.cache
    grouped = evaluate.grouped_prefill(model, enc.input_ids, enc.attention_mask, 30)
    real = mask.bool()
    for (k, v, *_), (k2, v2, *_) in zip(whole, grouped):
        assert k2.shape == k.shape
        torch.testing.assert_close(k2.transpose(1, 2)[real], k.transpose(1, 2)[real], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(v2.transpose(1, 2)[real], v.transpose(1, 2)[real], rtol=1e-5, atol=1e-5)
        assert not k2.transpose(1, 2)[~real].any()  # padded slots: zeros, masked


def test_grouped_prefill_runs_the_vocabulary_head_on_one_position_per_group(tiny_dir):
    """The prefill keeps only the cache: the head's logits at every other position (~20% of a 135M model's
    prefill FLOPs) are not computed."""
    model, tok = base_model.load(tiny_dir)
    tok.padding_side = "left"
    enc = tok(PROMPTS, return_tensors="pt", padding=True, add_special_tokens=False)
    positions = []
    hook = model.get_output_embeddings().register_forward_hook(lambda m, i, o: positions.append(i[0].shape[1]))
    try:
        assert evaluate.grouped_prefill(model, enc.input_ids, enc.attention_mask, 30) is not None
    finally:
        hook.remove()
    assert len(positions) > 1 and set(positions) == {1}


def test_a_right_padded_batch_or_one_group_is_left_to_the_padded_forward(tiny_dir):
    model, tok = base_model.load(tiny_dir)
    for side, tokens in (("right", 30), ("left", 10_000)):
        tok.padding_side = side
        enc = tok(PROMPTS, return_tensors="pt", padding=True, add_special_tokens=False)
        assert evaluate.grouped_prefill(model, enc.input_ids, enc.attention_mask, tokens) is None


def test_lm_eval_scores_the_same_with_grouped_prefill(tiny_dir, method_specs, tmp_path, monkeypatch):
    calls = []
    real = evaluate.grouped_prefill
    monkeypatch.setattr(evaluate, "grouped_prefill", lambda *a: calls.append(a[-1]) or real(*a))
    model, tok = deployed_model(tiny_dir, method_specs["lora"])
    build.build(config.load_task("summarization"), {"train": 4, "validation": 2, "test": 10}, tmp_path / "s")
    task = config.load_task("summarization")["dir"]
    runs = {
        g: evaluate.run(model, tok, task, tmp_path / "s" / "test.jsonl", batch_size=10, prefill_tokens=g)
        for g in (0, 200)
    }
    resps = {g: [s["filtered_resps"] for s in r[1]["peftbench_summarization"]] for g, r in runs.items()}
    assert calls == [200]  # lm-eval's one batch of 10 went through it
    assert resps[0] == resps[200]
    assert evaluate.scores(runs[0][0], "summarization") == evaluate.scores(runs[200][0], "summarization")


def test_loreft_is_not_chunked_because_its_interventions_count_positions_per_forward(tiny_dir, method_specs):
    """Why the flag exists: LoReFT's last-position interventions would land one token early (and its decoding-step
    test would skip the prompt's last token), so grouped prefill changes its generation."""
    model, tok = deployed_model(tiny_dir, method_specs["loreft"])
    padded_scores, grouped_scores = greedy(model, tok)[1], greedy(model, tok, 40)[1]
    assert (padded_scores - grouped_scores).abs().max() > 1e-2
