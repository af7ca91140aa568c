"""The shared training loop: target-only loss, seeded, lowers the loss, refuses bad input."""

import math

import pytest
import torch

from peftbench import config
from peftbench.model import assemble
from peftbench.model.assemble import method_model
from peftbench.stages import train

RECORDS = [
    {"id": str(i), "prompt": f"Translate English to Spanish.\nEnglish: house {i}\nSpanish:", "target": f"casa {i}"}
    for i in range(8)
]


def settings(**kw):  # validation losses on: these tests check that training lowers the validation loss
    return {
        **config.training_defaults(),
        "steps": 6,
        "batch_size": 4,
        "learning_rate": 3e-3,
        "val_loss_before": True,
        "val_loss_after": True,
        **kw,
    }


def test_labels_cover_only_the_target(tiny):
    _, tok = tiny
    ((ids, labels),) = train.encode(RECORDS[:1], tok, 64)
    prompt_len = len(tok(RECORDS[0]["prompt"], add_special_tokens=False).input_ids)
    assert all(x == -100 for x in labels[:prompt_len])
    assert tok.decode([x for x in labels if x != -100]) == " casa 0\n"
    assert ids[prompt_len:] == labels[prompt_len:]


def test_too_long_is_an_error_naming_the_record(tiny):
    _, tok = tiny
    with pytest.raises(ValueError, match=r"train.jsonl: record 0: \d+ tokens exceed training.max_seq_len=8"):
        train.encode(RECORDS[:1], tok, 8)


def test_batches_are_seeded_and_cover_every_example():
    a, b = train.batches(10, 4, 5, seed=1), train.batches(10, 4, 5, seed=1)
    assert a == b and a != train.batches(10, 4, 5, seed=2)
    assert sorted(sum(a, [])[:10]) == list(range(10))


@pytest.mark.parametrize("method", ["full", "lora"])
def test_a_few_steps_lower_the_loss_and_are_reproducible(tiny_dir, method_specs, method):
    runs = []
    for _ in range(2):
        model, tok, *_ = method_model(tiny_dir, method_specs[method])
        stats = train.train(model, tok, RECORDS, RECORDS[:4], settings(), seed=0)
        runs.append(stats)
    stats = runs[0]
    assert stats["val_loss_after"] < stats["val_loss_before"]
    assert len(stats["loss_curve"]) == 6 and stats["train_tokens"] > 0
    assert runs[0]["loss_curve"] == runs[1]["loss_curve"], "same seed, different losses"


def test_divergence_stops_training(tiny_dir, method_specs):
    model, tok, *_ = method_model(tiny_dir, method_specs["full"])
    with torch.no_grad():
        model.model.norm.weight.fill_(math.nan)
    with pytest.raises(FloatingPointError, match="diverged"):
        train.train(model, tok, RECORDS, RECORDS[:4], settings(), seed=0)


def test_zero_steps_train_nothing(tiny_dir, method_specs):
    model, tok, *_ = method_model(tiny_dir, method_specs["zero-shot"])
    stats = train.train(model, tok, RECORDS, RECORDS[:4], settings(steps=0), seed=0)
    assert stats["loss_curve"] == [] and stats["val_loss_before"] == stats["val_loss_after"]


def test_target_loss_equals_cross_entropy_over_all_logits(tiny):
    """Skipping the LM head on prompt positions changes nothing: same value as the full computation."""
    model, tok = tiny
    ids, labels, mask = train.collate(train.encode(RECORDS[:3], tok, 64), tok.pad_token_id)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
        reference = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1), ignore_index=-100
        )
        torch.testing.assert_close(train.target_loss(model, ids, labels, mask), reference)


def test_label_smoothing_is_the_lora_repos_loss(tiny):
    """(1 - eps) (-log p_y) + eps mean_c(-log p_c) per target token (microsoft/LoRA examples/NLG/src/model.py)."""
    model, tok = tiny
    ids, labels, mask = train.collate(train.encode(RECORDS[:3], tok, 64), tok.pad_token_id)
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), -1)
        y, keep = labels[:, 1:], labels[:, 1:] != -100
        nll = -logp.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        reference = ((0.9 * nll + 0.1 * -logp.mean(-1))[keep]).mean()
        smoothed = train.target_loss(model, ids, labels, mask, label_smoothing=0.1)
    torch.testing.assert_close(smoothed, reference)
    assert not torch.allclose(smoothed, train.target_loss(model, ids, labels, mask))


def one_step(tiny_dir, method_specs, **kw):
    model, tok, *_ = method_model(tiny_dir, method_specs["full"])
    train.train(model, tok, RECORDS, RECORDS[:4], settings(steps=1, warmup_ratio=0.0, **kw), seed=0)
    return model.model.norm.weight.detach().clone()


def test_max_grad_norm_zero_means_no_clipping(tiny_dir, method_specs):
    """--clip 0.0 (LoRA's E2E command): the step a clip that never bites takes, not the step of a tight clip."""
    free = one_step(tiny_dir, method_specs, max_grad_norm=0.0)
    assert torch.equal(free, one_step(tiny_dir, method_specs, max_grad_norm=1e9))
    assert not torch.allclose(free, one_step(tiny_dir, method_specs, max_grad_norm=1e-9))


def test_base_dropout_zero_makes_gpt2_deterministic_in_training():
    """Hugging Face's GPT-2 config has dropout 0.1 (embeddings, attention, residuals); the LoRA repo's GPT-2 none."""
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(
        AutoConfig.for_model("gpt2", n_embd=32, n_layer=2, n_head=4, vocab_size=100, n_positions=32)
    ).train()
    ids = torch.randint(0, 100, (2, 12))
    assert not torch.equal(model(ids).logits, model(ids).logits)  # dropout on
    assemble.set_dropout(model, 0.0)
    assert torch.equal(model(ids).logits, model(ids).logits)


def test_fp16_trains_with_a_grad_scaler(tiny_dir, method_specs):
    model, tok, *_ = method_model(tiny_dir, method_specs["lora"])
    stats = train.train(model, tok, RECORDS, RECORDS[:4], settings(), seed=0, precision="fp16")
    assert stats["val_loss_after"] < stats["val_loss_before"]


def test_eos_target_end_trains_the_tokenizers_eos_after_the_target(tiny):
    _, tok = tiny
    ((ids, labels),) = train.encode(RECORDS[:1], tok, 64, end="eos")
    target = [x for x in labels if x != -100]
    assert target[-1] == tok.eos_token_id and tok.decode(target[:-1]) == " casa 0"


def test_bos_in_training_and_lm_eval_alike(tiny):
    """model.add_bos: <s> before every prompt in the loop's encoding and in lm-eval's (pyreft's LLaMA runs);
    without it, neither adds one (lm-eval's default would add whatever the tokenizer adds: LLaMA's <s>)."""
    from peftbench.stages import evaluate

    model, tok = tiny
    prompt = tok(RECORDS[0]["prompt"], add_special_tokens=False).input_ids
    for bos in (True, False):
        ((ids, labels),) = train.encode(RECORDS[:1], tok, 64, bos=bos)
        lm = evaluate._hflm()(pretrained=model, tokenizer=tok, batch_size=1, device="cpu", bos=bos)
        evaluated = lm.tok_batch_encode([RECORDS[0]["prompt"]])[0][0].tolist()
        assert ids[: len(evaluated)] == evaluated == [tok.bos_token_id] * bos + prompt
        assert labels[: len(evaluated)] == [-100] * len(evaluated)


def test_validation_losses_are_measured_only_when_asked_and_change_no_training(tiny_dir, method_specs):
    runs = {}
    for asked in (False, True):
        model, tok, *_ = method_model(tiny_dir, method_specs["lora"])
        flags = {"val_loss_before": asked, "val_loss_after": asked}
        runs[asked] = train.train(model, tok, RECORDS, RECORDS[:4], settings(**flags), seed=0)
    assert runs[False]["val_loss_before"] is None and runs[False]["val_loss_after"] is None
    assert runs[True]["val_loss_before"] > runs[True]["val_loss_after"]
    assert runs[False]["loss_curve"] == runs[True]["loss_curve"]  # the extra passes draw no random numbers
