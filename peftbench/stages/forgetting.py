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
import time
from pathlib import Path

import torch

from peftbench import io, runspec
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
def text_losses(model, tokenizer, texts, batch_size=8, precision="fp32", max_len=384):
    """Per text, in the order given: (sum of its next-token losses, tokens scored; the first token has no
    context). Texts go through in batches of similar length (sorted by length), so little padding is
    computed; right padding under the attention mask leaves every text's own loss unchanged.
    The text goes in as a prompt would: a method that prepends positions (prompt tuning) or acts on the
    prompt (LoReFT) acts on it as it would on any user input."""
    model.eval()
    device = next(model.parameters()).device
    enc = [tokenizer(t, add_special_tokens=False).input_ids[:max_len] for t in texts]
    order = sorted(range(len(enc)), key=lambda i: len(enc[i]))
    sums, counts = [0.0] * len(enc), [0] * len(enc)
    for k in range(0, len(order), batch_size):
        idx = order[k : k + batch_size]
        ids, labels, mask = (
            t.to(device) for t in train.collate([(enc[i], enc[i]) for i in idx], tokenizer.pad_token_id)
        )
        n = ids.size(1)
        with train.autocast(precision, device.type):
            logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=n).logits[:, -n:]
        logits = logits[:, :-1].float()
        per_token = torch.nn.functional.cross_entropy(  # flat (tokens x vocab): the accurate log-softmax layout
            logits.reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1), ignore_index=-100, reduction="none"
        ).view(len(idx), -1)  # [batch, n - 1], 0 at padding
        for row, i in enumerate(idx):
            sums[i], counts[i] = per_token[row].sum().item(), int((labels[row, 1:] != -100).sum())
    return sums, counts


def base_job(cfg, base_dir, general_file, out_json):
    """The base model's loss on the sample: the reference every run's forgetting.json is set against."""
    from peftbench.model import assemble, base_model

    model, tok = base_model.load(base_dir, dtype=assemble.weights_dtype(cfg))  # as the runs load it
    sums, counts = text_losses(
        model,
        tok,
        _texts(general_file),
        precision=cfg.get("precision", "fp32"),
        max_len=runspec.profile_max_seq_len(cfg),
    )
    io.write_json(
        out_json,
        {
            "loss": sum(sums) / sum(counts),
            "tokens": sum(counts),
            "sample": Path(general_file).name,
            **_per_text(sums, counts),
        },
    )


def measure(cfg, model, tok, general_file, base_json, out_json):
    """A loaded run's loss on the sample, beside the base model's (zero-shot: equal, bit for bit).
    Per text too (`per_text`), so the report's interval for the delta is a paired bootstrap over texts."""
    start = time.perf_counter()
    sums, counts = text_losses(
        model,
        tok,
        _texts(general_file),
        precision=cfg.get("precision", "fp32"),
        max_len=runspec.profile_max_seq_len(cfg),
    )
    wall = time.perf_counter() - start
    loss, base = sum(sums) / sum(counts), io.read_json(base_json)
    io.write_json(
        out_json,
        {
            "loss": loss,
            "base_loss": base["loss"],
            "delta": loss - base["loss"],
            "tokens": sum(counts),
            "sample": Path(general_file).name,
            **_per_text(sums, counts),
            "base_loss_sums": base.get("per_text", {}).get("loss_sums"),
            "wall_time_s": round(wall, 3),  # the report's time table: measurement, not fixed cost
        },
    )


def _per_text(sums, counts):
    return {"per_text": {"loss_sums": [round(x, 6) for x in sums], "tokens": counts}}


def _texts(general_file):
    return [r["text"] for r in io.read_jsonl(general_file, required=("id", "text"))]
