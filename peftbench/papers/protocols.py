"""The setup a paper row was run under, beside the one our run recorded: every key that differs, generated.

papers.yaml's `protocols` hold each paper's setup as data (training, decoding, seeds, precision, input format);
an ordering names the protocol of its rows, a row may name another or override keys. `ours` reads the same keys
from what a run recorded (train.json's resolved training settings and precision, the task's lm_eval.yaml
generation settings and prompt, the seeds that ran), so the report's paper-vs-ours table states, per row, what
differs from the paper's setup, without a hand-written list that could go stale when a profile changes.

    differences(paper, ours) = [key: paper's value vs ours, for each key the paper's protocol records]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import yaml

TRAINING = (
    "steps",
    "epochs",
    "batch_size",
    "learning_rate",
    "warmup_steps",
    "schedule",
    "weight_decay",
    "max_grad_norm",
    "label_smoothing",
    "base_dropout",
    "max_seq_len",
    "precision",
    "seeds",
    "loss_on_inputs",
)
DECODING = ("num_beams", "length_penalty", "no_repeat_ngram_size", "min_new_tokens", "max_gen_toks", "newline_banned")
KEYS = ("model", *TRAINING, *DECODING, "input_format")
# what generate() does where lm_eval.yaml's generation_kwargs say nothing (transformers' GenerationConfig)
GENERATION_DEFAULTS = {"num_beams": 1, "length_penalty": 1.0, "no_repeat_ngram_size": 0, "min_new_tokens": 0}


@dataclass(frozen=True)
class Protocol:
    name: str
    source: str
    settings: dict  # key -> the paper's value, for the keys it records


def _load() -> dict[str, Protocol]:
    data = yaml.safe_load(Path(__file__).with_name("papers.yaml").read_text())["protocols"]
    out = {}
    for name, p in data.items():
        unknown = sorted(set(p) - {"source", *KEYS})
        if unknown:
            raise ValueError(f"papers.yaml: protocols.{name}: unknown key(s) {unknown} (known: {', '.join(KEYS)})")
        out[name] = Protocol(name, p["source"], {k: v for k, v in p.items() if k != "source"})
    return out


PROTOCOLS = _load()


def for_row(default: str | None, row_field) -> Protocol | None:
    """A paper row's protocol: the ordering's `default`, or the row's fourth field (a protocol's name, or
    {protocol: name, key: value, ...} with the keys that row ran otherwise)."""
    name, overrides = default, {}
    if isinstance(row_field, str):
        name = row_field
    elif isinstance(row_field, dict):
        name, overrides = row_field.get("protocol", default), {k: v for k, v in row_field.items() if k != "protocol"}
    if name is None:
        return None
    if name not in PROTOCOLS:
        raise ValueError(f"papers.yaml: no protocol {name!r} (protocols: {', '.join(PROTOCOLS)})")
    p = PROTOCOLS[name]
    bad = sorted(set(overrides) - set(KEYS))
    if bad:
        raise ValueError(f"papers.yaml: a row of protocol {name!r} overrides unknown key(s) {bad}")
    return Protocol(p.name, p.source, {**p.settings, **overrides})


def ours(model: str, train: dict, seeds: int, generation: dict, prompt: str | None) -> dict:
    """Our run's values of the protocol keys: `train` is a train.json (its `training`, the settings resolved from
    the profile, and `precision`), `generation` the task's lm_eval.yaml generation_kwargs, `prompt` its template."""
    t = train.get("training") or {}
    steps = t.get("steps")
    warmup = math.ceil(t.get("warmup_ratio", 0.0) * steps) if steps else None  # train.schedule's rounding
    stop = [s for s in generation.get("until") or [] if s]
    return {
        "model": model,
        "steps": steps,
        "epochs": t.get("epochs"),
        "batch_size": t.get("batch_size"),
        "learning_rate": t.get("learning_rate"),
        "warmup_steps": warmup,
        "schedule": t.get("schedule", "linear"),
        "weight_decay": t.get("weight_decay"),
        "max_grad_norm": t.get("max_grad_norm"),
        "label_smoothing": t.get("label_smoothing", 0.0),
        "base_dropout": t.get("base_dropout", "the model's own"),  # unset: the base model keeps its config's
        "max_seq_len": t.get("max_seq_len"),
        "precision": train.get("precision"),
        "seeds": seeds,
        "loss_on_inputs": False,  # peftbench.stages.train: the loss counts the target's tokens only
        **{k: generation.get(k, v) for k, v in GENERATION_DEFAULTS.items()},
        "max_gen_toks": generation.get("max_gen_toks"),
        "newline_banned": False,  # decoding stops at a newline (`until`) where a task's answer ends at one
        "input_format": f"the task's prompt template {prompt!r}" + (f", stop at {stop!r}" if stop else ""),
    }


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def differences(protocol: Protocol, our: dict) -> list[str]:
    """`key paper's value (paper) vs our value (ours)` for every key the protocol records that our run does not
    match; the input format always differs (the paper's is words, ours a template) and is named last."""
    out = []
    for key in KEYS:
        if key not in protocol.settings or key == "input_format":
            continue
        if key == "epochs" and our.get("epochs") is None and "steps" in protocol.settings:
            continue  # the protocol's steps are compared instead
        if not _same(protocol.settings[key], our.get(key)):
            out.append(f"{key} {_fmt(protocol.settings[key])} (paper) vs {_fmt(our.get(key))} (ours)")
    if "input_format" in protocol.settings:
        out.append(f"input: {protocol.settings['input_format']} (paper) vs {our['input_format']} (ours)")
    return out


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return "unset" if v is None else str(v)
