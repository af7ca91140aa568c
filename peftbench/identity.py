"""The identity of a run: everything that determines its result, as one hash.

A checkpoint is resumed, and a result is trusted, only when this identity matches. It covers the
content of the files a run reads (its train/validation data, method.py + method.yaml, every file of the
task folder), not only their names, and the profile keys that reach the run (model, the task's sizes,
seed and source, training settings, hyperparameters, precision, device). Killing a run, editing a
record of its data and rerunning therefore starts from step 0 instead of resuming onto new data.

Stored task states are identified by their sha256, recorded in train.json and checked wherever the
state is read again (evaluate, task switch, summary), so a truncated or swapped file is caught."""

import hashlib
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def folder_files(folder: Path | str) -> list[Path]:
    """The files of a method or task folder that define it (not caches, not hidden files)."""
    folder = Path(folder)
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def file_hashes(
    method_spec: dict, task_dir: Path | str | list[Path], data_dir: Path | str
) -> dict[str, dict[str, str]]:
    """{group: {relative path: sha256}} of what a fine-tuning run reads: its data splits, the method's
    method.py and method.yaml (a profile variant uses its parent's), and every file of the task folder.
    A union's training (`task_dir` a list: its members' folders) reads every member's, keyed <task>/<path>;
    its data splits are the concatenation, so their hashes cover every member's records."""
    method_dir = Path(method_spec["dir"])
    return {
        "data": {f"{s}.jsonl": sha256_file(Path(data_dir) / f"{s}.jsonl") for s in ("train", "validation")},
        "method": {f: sha256_file(method_dir / f) for f in ("method.py", "method.yaml")},
        "task": _task_files(task_dir)
        if not isinstance(task_dir, list)
        else {f"{Path(d).name}/{k}": v for d in task_dir for k, v in _task_files(d).items()},
    }


def _task_files(task_dir: Path | str) -> dict[str, str]:
    task_dir = Path(task_dir)
    return {p.relative_to(task_dir).as_posix(): sha256_file(p) for p in folder_files(task_dir)}


def training_run(
    record: dict, task_name: str, method_spec: dict, seed: int, data_dir: Path | str, task_dirs: list, n_train: int
) -> tuple[dict, dict, dict]:
    """(training settings, file hashes, run identity) of a fine-tuning run, computed one way for the job that trains
    it (peftbench.stages.pipeline.finetune) and for the report that checks a stored run against the current profile
    (peftbench.report.stale). `record`: the job's profile record (peftbench.runspec.training); `task_dirs`: the
    task folder, or a union's member folders; `n_train`: the train split's size (training.epochs -> steps)."""
    from peftbench import config

    settings = config.with_epochs(config.training_settings(record, method_spec), n_train)
    files = file_hashes(method_spec, list(task_dirs) if len(task_dirs) > 1 else task_dirs[0], data_dir)
    return settings, files, run_identity(record, task_name, method_spec, settings, seed, files)


def run_identity(
    cfg: dict, task_name: str, method_spec: dict, settings: dict, seed: int, files: dict[str, dict[str, str]]
) -> dict:
    """The parts whose hash is the run's config hash and its checkpoints' fingerprint. `settings`: the
    training settings less checkpoint_every (how often to save does not change the result)."""
    return {
        "model": cfg["model"],
        "task": task_name,
        "task_profile": _task_profile(cfg, task_name),
        "method": method_spec["name"],
        "hyperparameters": method_spec["hyperparameters"],
        "training": {k: v for k, v in settings.items() if k != "checkpoint_every"},
        "precision": cfg.get("precision", "fp32"),
        "device": cfg.get("device", "auto"),
        "seed": seed,
        "files": files,
    }


def _task_profile(cfg: dict, task_name: str) -> dict | None:
    """The profile keys of a task's data; for a union (profile key train_union) the union and its members'."""
    union, tasks = cfg.get("train_union") or {}, cfg.get("tasks") or {}
    if union.get("name") == task_name:
        return {"train_union": union, "tasks": {t: tasks.get(t) for t in union["tasks"]}}
    return tasks.get(task_name)


def check_state(path: Path | str, expected: str | None, reader: str = "this job") -> str:
    """Raise unless the task state file at `path` is the one fine-tuning stored (its train.json's sha256)."""
    if not expected:
        raise ValueError(
            f"{path}: its train.json records no task_state_sha256 (written by an older peftbench?): "
            f"rerun the fine-tuning before {reader} reads it"
        )
    found = sha256_file(path)
    if found != expected:
        raise ValueError(
            f"{path}: sha256 {found[:16]}... differs from the {expected[:16]}... its train.json "
            f"recorded: the stored state is truncated or was replaced; {reader} refuses it "
            f"(rerun the fine-tuning)"
        )
    return found
