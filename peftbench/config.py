"""Profiles, method and task definitions: loaded, validated against config/*.schema.yaml, merged.

Every error names the file and the field, so a typo fails before any job runs.
"""

import copy
import functools
import math
import re
from collections.abc import Callable
from pathlib import Path

import jsonschema
import yaml

from peftbench.paths import ROOT

CONFIG = ROOT / "config"
METHODS = ROOT / "methods"
TASKS = ROOT / "tasks"


CONTRACT = ("attach", "task_state", "load")  # what every methods/<name>/method.py defines


class ConfigError(ValueError):
    pass


def _schema(name):
    return copy.deepcopy(_parsed_schema(name))  # a copy: callers may fill defaults into what they get


@functools.cache
def _parsed_schema(name):
    """Each schema parsed once per process (a job asks for it a few dozen times; PyYAML is slow)."""
    return yaml.load((CONFIG / name).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def validate(obj: object, schema_name: str, where: Path | str) -> None:
    """Raise ConfigError('<file>: <field>: <problem>') for the first schema violation."""
    schema = _schema(schema_name)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(obj), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        field = ".".join(str(p) for p in e.absolute_path) or "(top level)"
        raise ConfigError(f"{where}: field '{field}': {e.message}{_yaml_number_hint(e)}")


def _yaml_number_hint(error: jsonschema.ValidationError) -> str:
    """YAML 1.1 (PyYAML) reads `1.0e9` or `1e-4` as a string: its floats need a dot and a signed exponent."""
    text = error.instance
    if error.validator != "type" or not isinstance(text, str):
        return ""
    m = re.fullmatch(r"([-+]?)(\d+)(?:\.(\d*))?[eE]([-+]?)(\d+)", text.strip())
    if not m:
        return ""
    sign, whole, frac, esign, exp = m.groups()
    return f" (YAML reads {text} as text: write {sign}{whole}.{frac or '0'}e{esign or '+'}{exp})"


def load_yaml(path: Path | str, loader: type = yaml.SafeLoader) -> dict:
    """A YAML mapping; a missing file or a syntax error names the file (and the line), not a traceback."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        obj = yaml.load(path.read_text(), loader)
    except yaml.YAMLError as e:
        raise ConfigError(yaml_error(path, e)) from None
    if not isinstance(obj, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return obj


def yaml_error(path: Path | str, e: yaml.YAMLError) -> str:
    """'<file>:<line>: not valid YAML (<problem>)' from PyYAML's error, which knows where it stopped."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    problem = "; ".join(str(x) for x in (getattr(e, "context", None), getattr(e, "problem", None)) if x) or str(e)
    return f"{where}: not valid YAML ({problem})"


def discover_methods(root: Path | str = METHODS) -> dict[str, dict]:
    """Every methods/<name>/method.yaml, validated; nothing else names the methods."""
    found = {}
    for yml in sorted(Path(root).glob("*/method.yaml")):
        spec = load_yaml(yml)
        validate(spec, "method.schema.yaml", yml)
        if spec["name"] != yml.parent.name:
            raise ConfigError(f"{yml}: field 'name': '{spec['name']}' must equal the folder name '{yml.parent.name}'")
        if not (yml.parent / "method.py").is_file():
            raise ConfigError(f"{yml.parent}: method.py is missing (every method directory needs one)")
        training = spec.get("training", {})
        _validate_training(training, yml)
        spec["dir"] = str(yml.parent)
        found[spec["name"]] = spec
    return found


def _validate_training(training, where):
    schema = _schema("schema.yaml")
    sub = dict(schema["$defs"]["training"])
    errors = list(jsonschema.Draft202012Validator(sub).iter_errors(training))
    if errors:
        e = errors[0]
        field = ".".join(["training", *map(str, e.absolute_path)])
        raise ConfigError(f"{where}: field '{field}': {e.message}")


def load_task(name: str, root: Path | str = TASKS) -> dict:
    yml = Path(root) / name / "task.yaml"
    if not yml.is_file():
        known = sorted(p.parent.name for p in Path(root).glob("*/task.yaml"))
        raise ConfigError(f"unknown task '{name}': no {yml} (known tasks: {', '.join(known)})")
    spec = load_yaml(yml)
    validate(spec, "task.schema.yaml", yml)
    if spec["name"] != name:
        raise ConfigError(f"{yml}: field 'name': '{spec['name']}' must equal the folder name '{name}'")
    spec["dir"] = str(yml.parent)
    return spec


def lm_eval_config(
    path: Path | str, load: Callable[[Path], dict], _chain: tuple[Path, ...] = ()
) -> tuple[dict, list[Path]]:
    """An lm-eval task YAML as lm-eval reads it: the YAMLs it `include:`s (one or a list, each with its own
    includes) merged beneath it in order, the file's own keys over them; and every file read on the way.
    `load(path)` parses one file (each caller its own `!function` handling and error messages). An include that
    is not a file name, or that leads back to a file on its own chain, is an error naming the file."""
    path = Path(path)
    cfg = dict(load(path) or {})
    include = cfg.pop("include", None) or []
    includes = [include] if isinstance(include, str) else include
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise ConfigError(f"{path}: field 'include': {include!r} is not a file name or a list of file names")
    merged, files = {}, [path]
    for inc in includes:
        if not (path.parent / inc).is_file():
            raise ConfigError(f"{path}: field 'include': no {path.parent / inc}")
        if (path.parent / inc).resolve() in {p.resolve() for p in (*_chain, path)}:
            raise ConfigError(
                f"{path}: field 'include': {inc} includes itself (through {' -> '.join(map(str, (*_chain, path)))})"
            )
        sub, sub_files = lm_eval_config(path.parent / inc, load, (*_chain, path))
        merged.update(sub)
        files += sub_files
    return {**merged, **cfg}, files


class LmEvalLoader(yaml.SafeLoader):
    """lm-eval YAML uses `!function utils.x` tags: keep them as strings."""


LmEvalLoader.add_multi_constructor("!", lambda loader, tag, node: f"{tag} {loader.construct_scalar(node)}")


def lm_eval_yaml(path: Path | str) -> dict:
    """The one reader of a task's lm_eval.yaml: the YAMLs it `include:`s merged beneath it, as lm-eval merges them."""
    return lm_eval_config(path, lambda p: load_yaml(p, LmEvalLoader))[0]


def lm_eval_files(task_dir: Path | str) -> list[Path]:
    """What lm-eval reads to score a task, so that a change to any of it re-evaluates: the Python of every
    `!function` (`function_source`), then lm_eval.yaml and every YAML that it `include:`s (the shared
    tasks/lm_eval_*.yaml)."""
    tags = []
    loader = type("IncludeLoader", (yaml.SafeLoader,), {})
    loader.add_constructor("!function", lambda ld, node: tags.append((ld.name, ld.construct_scalar(node))))
    yml = Path(task_dir) / "lm_eval.yaml"
    if not yml.is_file():
        raise ConfigError(f"{yml}: missing")
    yamls = lm_eval_config(yml, lambda p: yaml.load(_named(p), Loader=loader))[1]
    sources = [function_source(Path(f), tag) for f, tag in tags]
    return [*dict.fromkeys(s for s in sources if s is not None), *yamls]


def function_source(yml: Path, tag: str) -> Path | None:
    """The file a `!function module.name` of `yml` is read from, as lm-eval resolves it: `module`.py next to the
    YAML, else the installed module (peftbench's own, e.g. peftbench.scoring.commonsense). None: neither."""
    module = tag.rpartition(".")[0]
    local = Path(yml).parent / f"{module.replace('.', '/')}.py"
    if local.is_file():
        return local
    return package_file(module)


def package_file(module: str) -> Path | None:
    """peftbench.a.b's source file (a/b.py, or a/b/__init__.py); None for a module of another package or none."""
    parts = module.split(".")
    if parts[0] != "peftbench":
        return None
    base = Path(__file__).parent.joinpath(*parts[1:])
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)


def _named(path: Path):
    """A file's text as a stream that names the file (PyYAML's loader.name): where each `!function` was found."""
    import io

    stream = io.StringIO(Path(path).read_text())
    stream.name = str(path)
    return stream


def selected_methods(config: dict, available: list[str] | dict, where: str = "config") -> list[str]:
    wanted = config.get("methods", "all")
    if wanted == "all":
        return list(available)
    unknown = [m for m in wanted if m not in available]
    if unknown:
        raise ConfigError(
            f"{where}: field 'methods': unknown method(s) {', '.join(unknown)} "
            f"(found in methods/: {', '.join(available)})"
        )
    return list(wanted)


def profile_methods(config: dict, root: Path | str = METHODS) -> dict[str, dict]:
    """The methods a profile can run: every methods/<name>/ folder, plus the profile's
    `method_variants` (a new name for an existing method with other hyper-parameters, e.g. Adapter-L
    as houlsby with `placement: mlp_only`), with `method_hyperparameters` laid over method.yaml's
    (e.g. GPT-2's module names). A variant keeps its parent's method.py and folder and inherits its
    parent's overrides: method.yaml < method_hyperparameters[parent] < variant < method_hyperparameters[variant]."""
    specs = discover_methods(root)
    overrides = config.get("method_hyperparameters", {})
    unknown = sorted(set(overrides) - set(specs) - set(config.get("method_variants", {})))
    if unknown:
        raise ConfigError(
            f"config: field 'method_hyperparameters': unknown method(s) {', '.join(unknown)} "
            f"(found: {', '.join([*specs, *config.get('method_variants', {})])})"
        )

    def overlay(spec):
        return {**spec, "hyperparameters": {**spec["hyperparameters"], **overrides.get(spec["name"], {})}}

    specs = {name: overlay(spec) for name, spec in specs.items()}
    for name, variant in config.get("method_variants", {}).items():
        parent = variant["from"]
        if name in specs:
            raise ConfigError(f"config: field 'method_variants.{name}': a method folder of that name exists")
        if parent not in specs:
            raise ConfigError(
                f"config: field 'method_variants.{name}.from': unknown method '{parent}' "
                f"(found in methods/: {', '.join(specs)})"
            )
        base = specs[parent]
        specs[name] = {
            **base,
            "name": name,
            "variant_of": parent,
            "description": variant.get("description", base.get("description", "")),
            "hyperparameters": {**base["hyperparameters"], **variant.get("hyperparameters", {})},
            "training": {**base.get("training", {}), **variant.get("training", {})},
        }
        _validate_training(specs[name]["training"], f"config: method_variants.{name}")
        specs[name] = overlay(specs[name])
    return specs


def run_seeds(config: dict, method: str, spec: dict | None = None) -> list[int]:
    """The seeds a method runs: the profile's `method_seeds[method]`, else `seeds`; a method whose result
    cannot depend on its seed (`seed_dependent`, given its spec) runs the first seed only."""
    if method in config.get("method_seeds", {}):
        return list(config["method_seeds"][method])
    if spec is not None and not seed_dependent(config, spec):
        return list(config["seeds"][:1])
    return list(config["seeds"])


def seed_dependent(config: dict, spec: dict) -> bool:
    """Whether a run's result depends on its seed. The seed fixes the new parameters' initialisation, dropout
    masks, data order and few-shot demonstrations; a method that trains nothing (steps: 0) and draws no
    demonstrations, greedy zero-shot, gives the same result for every seed: its seed variance is zero by
    construction, not unknown."""
    settings = training_settings(config, spec)
    trains = bool(settings.get("steps")) or bool(settings.get("epochs"))
    return trains or bool((spec.get("prompting") or {}).get("num_fewshot"))


def selected_tasks(config: dict) -> list[str]:
    """Task names in profile order; a task set to null is dropped (profiles overlay config/config.yaml,
    whose tasks a paper profile does not want)."""
    return [name for name, sizes in config["tasks"].items() if sizes is not None]


def train_union(config: dict) -> dict | None:
    """The profile's `train_union` ({name, tasks, seed}) or None: one model per (method, seed) on the union of
    those tasks' training data, evaluated on each of them (ReFT Table 1 on LLM-Adapters' commonsense_170k)."""
    return config.get("train_union") or None


def union_members(config: dict, name: str) -> list[str]:
    """The tasks whose data a training called `name` reads: the union's members, or the task itself."""
    union = train_union(config)
    return list(union["tasks"]) if union and union["name"] == name else [name]


def with_epochs(settings: dict, n_train: int) -> dict:
    """`epochs` passes over n_train records as steps: ceil(epochs x n_train / batch_size) (the HF Trainer's
    num_train_epochs that pyreft and LLM-Adapters set, one optimizer step per batch). A method that trains
    nothing (steps: 0) stays at 0; without `epochs` the settings are returned as they are."""
    if "epochs" not in settings or settings["steps"] == 0:
        return settings
    return {**settings, "steps": math.ceil(settings["epochs"] * n_train / settings["batch_size"])}


def rule_resources(config: dict, rule: str) -> dict:
    """Scheduler resources for one rule (gpu, mem_mb, runtime, ...): the profile's `resources.default`
    under `resources.<rule>`. Empty unless a profile asks, so local runs are unaffected."""
    res = config.get("resources", {})
    return {**res.get("default", {}), **res.get(rule, {})}


def training_defaults() -> dict:
    props = _schema("schema.yaml")["$defs"]["training"]["properties"]
    return {k: v["default"] for k, v in props.items() if "default" in v}


def training_settings(config: dict, method_spec: dict) -> dict:
    """Shared defaults < profile `training:` < method.yaml `training:` < profile `method_training:`."""
    return {
        **training_defaults(),
        **config.get("training", {}),
        **method_spec.get("training", {}),
        **config.get("method_training", {}).get(method_spec["name"], {}),
    }


def shadowed_training(
    profile_training: dict, method_specs: dict[str, dict], methods: list[str], method_training: dict | None = None
) -> list[str]:
    """Warnings, one per (method, key), for a profile `training:` value that a method's own `training:`
    (method.yaml, or a variant's) beats: `training_settings` puts method.yaml above the profile, so a paper
    profile's learning rate would silently not reach that method. `method_training.<method>.<key>` states
    the method's value explicitly and silences the warning; a method with steps: 0 trains nothing."""
    method_training = method_training or {}
    out = []
    for name in methods:
        spec = method_specs[name]
        own, chosen = spec.get("training", {}), method_training.get(name, {})
        if {**own, **chosen}.get("steps") == 0:
            continue
        source = (
            f"method_variants.{name}.training or methods/{spec['variant_of']}/method.yaml"
            if spec.get("variant_of")
            else f"methods/{name}/method.yaml"
        )
        for key, value in profile_training.items():
            if key in own and key not in chosen and own[key] != value:
                out.append(
                    f"profile training.{key}={value} does not reach method '{name}': {source} sets "
                    f"{key}={own[key]}; set method_training.{name}.{key} to say which one it runs at"
                )
    return out


def _fill(obj, schema, root):
    """Fill the schema's `default`s into obj, recursively (jsonschema validates but never fills)."""
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].split("/")[-1]]
    if not isinstance(obj, dict):
        return obj
    out = dict(obj)
    for key, sub in schema.get("properties", {}).items():
        if key not in out and "default" in sub:
            out[key] = sub["default"]
        if key in out:
            out[key] = _fill(out[key], sub, root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in out:
            if key not in schema.get("properties", {}):
                out[key] = _fill(out[key], extra, root)
    return out


def apply_defaults(cfg: dict) -> dict:
    schema = _schema("schema.yaml")
    out = _fill(cfg, schema, schema)
    # method_training entries are overrides: filling the training defaults into them would undo the
    # profile's `training:` for that method (a lone learning_rate would bring back steps: 40, ...)
    out["method_training"] = dict(cfg.get("method_training", {}))
    return out


def merge(base: dict, overlay: dict) -> dict:
    """Nested dicts merged key by key, anything else replaced: what `snakemake --configfile` does."""
    out = dict(base)
    for key, value in overlay.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_profile(*paths: Path | str) -> dict:
    """config/config.yaml overlaid by further profiles (as `snakemake --configfile` does), validated."""
    cfg = {}
    for p in paths:
        cfg = merge(cfg, load_yaml(p))
    validate(cfg, "schema.yaml", " + ".join(map(str, paths)))
    return apply_defaults(cfg)
