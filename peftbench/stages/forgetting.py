"""Forgetting: how much a fine-tune damages the base model's general ability (peft's method_comparison
reports the same idea), as the tuned model's loss on a fixed held-out sample of general text beside the
base model's loss on the same sample. One forward pass per text, no generation.

The sample: Wikipedia leads from the offline file the summarization and QA tasks use
(`peftbench.data.wiki`), but only leads that neither task's builder can ever return: both builders' whole
pools are excluded, so no split of any size overlaps the sample.

    loss = - (1/T) sum_t log p(x_t | x_<t)     over every token of every text (nats per token)
    forgetting delta = loss(tuned model) - loss(base model)     (> 0: general text got less likely)
"""

import random
from pathlib import Path

import torch

from peftbench import config, io
from peftbench.data import text, wiki
from peftbench.stages import train

GENERAL = "wiki_leads.jsonl"  # under {results}/data/general/


def general_texts(n, seed=0, leads=None):
    """n Wikipedia leads (20-120 words) that no wiki task uses, drawn with `seed`, in a fixed order."""
    leads = leads if leads is not None else wiki.load_leads()
    used = {r["id"] for r in wiki.summarization(leads)} | {r["id"] for r in wiki.cloze_qa(leads)}
    pool = [(title, lead) for title, lead in leads if title not in used and 20 <= text.n_words(lead) <= 120]
    if n > len(pool):
        raise ValueError(f"forgetting: field 'texts': asked for {n} leads, only {len(pool)} are unused by the tasks")
    return [{"id": title, "text": lead} for title, lead in random.Random(seed).sample(pool, n)]


def build(out_file, n, seed=0):
    io.write_jsonl(out_file, general_texts(n, seed))


@torch.no_grad()
def text_loss(model, tokenizer, texts, batch_size=8, precision="fp32", max_len=384):
    """Mean next-token cross-entropy over every token of `texts` (the first token of each has no context).
    The text goes in as a prompt would: a method that prepends positions (prompt tuning) or acts on the
    prompt (LoReFT) acts on it as it would on any user input."""
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for i in range(0, len(texts), batch_size):
        enc = [tokenizer(t, add_special_tokens=False).input_ids[:max_len] for t in texts[i : i + batch_size]]
        ids, labels, mask = (t.to(device) for t in train.collate([(e, e) for e in enc], tokenizer.pad_token_id))
        n = ids.size(1)
        with train.autocast(precision, device.type):
            logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=n).logits[:, -n:]
        logits = logits[:, :-1].float()
        total += torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1), ignore_index=-100, reduction="sum"
        ).item()
        count += int((labels[:, 1:] != -100).sum())
    return total / count, count


def base_job(cfg, base_dir, general_file, out_json):
    """The base model's loss on the sample: the reference every run's forgetting.json is set against."""
    from peftbench.model import base_model
    from peftbench.stages import pipeline

    model, tok = base_model.load(base_dir, dtype=pipeline.weights_dtype(cfg))  # as the runs load it
    loss, tokens = text_loss(
        model, tok, _texts(general_file), precision=cfg.get("precision", "fp32"), max_len=_max_len(cfg)
    )
    io.write_json(out_json, {"loss": loss, "tokens": tokens, "sample": Path(general_file).name})


def measure(cfg, model, tok, general_file, base_json, out_json):
    """A loaded run's loss on the sample, beside the base model's (zero-shot: equal, bit for bit)."""
    loss, tokens = text_loss(
        model, tok, _texts(general_file), precision=cfg.get("precision", "fp32"), max_len=_max_len(cfg)
    )
    base = io.read_json(base_json)["loss"]
    io.write_json(
        out_json,
        {"loss": loss, "base_loss": base, "delta": loss - base, "tokens": tokens, "sample": Path(general_file).name},
    )


def _max_len(cfg):
    return {**config.training_defaults(), **cfg.get("training", {})}["max_seq_len"]


def _texts(general_file):
    return [r["text"] for r in io.read_jsonl(general_file, required=("id", "text"))]
