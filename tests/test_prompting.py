"""Prompting done properly (issue 13): the chat template for zero-shot, seeded few-shot demonstrations from
the train split only, and one answer-start protocol for every method. Through lm-eval itself, on the tiny
model (the prompts lm-eval generated from are kept in samples.jsonl's `prompt`)."""

import pytest
import torch

from peftbench import config
from peftbench.stages import evaluate, pipeline

QA = config.load_task("qa")


@pytest.fixture(scope="module")
def qa_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("qa")
    pipeline.build_data("qa", {"train": 12, "validation": 2, "test": 3, "seed": 1234}, d)
    from peftbench import io

    return d, {s: io.read_jsonl(d / f"{s}.jsonl") for s in ("train", "test")}


def prompts(tiny, qa_data, prompting, seed=0):
    model, tok = tiny
    d, _ = qa_data
    _, samples = evaluate.run(
        model,
        tok,
        QA["dir"],
        d / "test.jsonl",
        batch_size=3,
        prompting=prompting,
        train_file=d / "train.jsonl",
        seed=seed,
    )
    return [evaluate.sample_record(s) for s in samples["peftbench_qa"]]


def test_zero_shot_with_chat_template_sends_the_templated_prompt(tiny, qa_data):
    _, tok = tiny
    _, data = qa_data
    got = [r["prompt"] for r in prompts(tiny, qa_data, {"chat_template": True})]
    want = [
        tok.apply_chat_template([{"role": "user", "content": r["prompt"]}], tokenize=False, add_generation_prompt=True)
        for r in data["test"]
    ]
    assert got == want
    assert [r["prompt"] for r in prompts(tiny, qa_data, {})] == [r["prompt"] for r in data["test"]]  # off: raw


def test_few_shot_prompt_is_identical_across_reruns_and_never_includes_a_test_example(tiny, qa_data):
    _, data = qa_data
    k = 3
    first = [r["prompt"] for r in prompts(tiny, qa_data, {"chat_template": True, "num_fewshot": k})]
    again = [r["prompt"] for r in prompts(tiny, qa_data, {"chat_template": True, "num_fewshot": k})]
    assert first == again
    for p, rec in zip(first, data["test"]):
        demos = [t for t in data["train"] if t["prompt"] in p]
        assert len(demos) == k and all(f"{t['target']}<|im_end|>" in p for t in demos)  # solved demonstrations
        assert [t["prompt"] in p for t in data["test"]] == [t is rec for t in data["test"]]  # only its own question
        assert p.count(rec["prompt"]) == 1 and p.endswith(rec["prompt"] + "<|im_end|>\n<|im_start|>assistant\n")
    other_seed = [r["prompt"] for r in prompts(tiny, qa_data, {"chat_template": True, "num_fewshot": k}, seed=1)]
    assert other_seed != first  # the run's seed draws the demonstrations
    raw = [r["prompt"] for r in prompts(tiny, qa_data, {"num_fewshot": k})]  # a model without a chat template
    assert all(p.endswith("\n\n" + rec["prompt"]) and p.count("Answer:") == k + 1 for p, rec in zip(raw, data["test"]))


def test_few_shot_without_a_train_split_is_a_clear_error(qa_data):
    d, _ = qa_data
    with pytest.raises(ValueError, match="train.jsonl"):
        evaluate.task_config(QA["dir"], d / "test.jsonl", None, 3)


def test_answer_start_protocol_keeps_a_leading_line_break_from_emptying_the_answer(tiny, qa_data, monkeypatch):
    """A model whose favourite token is a line break (as the instruct model's after "Answer:"): with the
    tasks' stop sequence every answer is empty, unless the first token may not end the answer."""
    model, tok = tiny
    newline = tok("\n", add_special_tokens=False).input_ids[0]

    def loves_newlines(module, args, output):
        output[..., newline] += 1e4
        return output

    handle = model.lm_head.register_forward_hook(loves_newlines)
    try:
        monkeypatch.setattr(evaluate, "answer_start_suppressed", lambda tok, until: [])  # the old protocol
        before = [r["filtered_resps"][0] for r in prompts(tiny, qa_data, {})]
        monkeypatch.undo()
        after = [r["filtered_resps"][0] for r in prompts(tiny, qa_data, {})]
    finally:
        handle.remove()
    assert before == ["", "", ""]
    assert all(a.strip() for a in after)


def test_suppressed_answer_starts_are_line_breaks_and_the_end_token_only(tiny):
    _, tok = tiny
    ids = evaluate.answer_start_suppressed(tok, ["\n"])
    texts = [tok.decode([i]) for i in ids]
    assert "\n" in texts and "\n\n" in texts and tok.eos_token_id in ids
    assert all(t == tok.eos_token or (not t.split("\n")[0].strip() and "\n" in t) for t in texts)
    for word in (" Paris", "Paris", " The", " 1990"):
        assert tok(word, add_special_tokens=False).input_ids[0] not in ids
    assert torch.tensor(ids).unique().numel() == len(ids)
