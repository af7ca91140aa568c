"""A method's hyperparameters, checked while the DAG is built: method.yaml's `accepts:` declares every key
method.py reads (name -> JSON schema of its value), so a misspelled key (`target_module:`) or a value of the
wrong type fails at once, naming the file and the field, instead of a KeyError or a silently ignored
setting in a job an hour later.

Three places give hyperparameters, each checked against the method's `accepts:` and named in the error:
method.yaml's `hyperparameters:`, a profile's `method_hyperparameters.<method>` and a profile's
`method_variants.<name>.hyperparameters`. And method.py itself is read (with `ast`, not imported): a
`hp["key"]` or `hp.get("key")` whose key `accepts:` does not declare is an error in method.yaml.
"""

import ast
import difflib
from pathlib import Path

import jsonschema

from peftbench.config import ConfigError, load_yaml

WHERE = "config"


def check(cfg: dict, method_specs: dict[str, dict], methods: list[str], where: str = WHERE) -> None:
    """Every selected method (a variant: its parent folder's `accepts:`), and every hyperparameter given for it.
    Every method's errors come at once, one line each: a new user copying three methods fixes them in one pass."""
    errors = []
    for name in methods:
        try:
            _check_method(cfg, method_specs[name], name, where)
        except ConfigError as e:
            errors.append(str(e))
    if errors:
        raise ConfigError("\n".join(errors) if len(errors) == 1 else f"{len(errors)} methods:\n" + "\n".join(errors))


def _check_method(cfg: dict, spec: dict, name: str, where: str) -> None:
    variants = cfg.get("method_variants", {})
    folder = Path(spec["dir"])
    accepts = spec["accepts"]
    yml = folder / "method.yaml"
    own = load_yaml(yml)["hyperparameters"]
    declared_reads(folder / "method.py", accepts, yml, own)
    given(own, accepts, f"{yml}: field 'hyperparameters", folder)
    for source in (spec.get("variant_of"), name):
        if source in cfg.get("method_hyperparameters", {}):
            given(
                cfg["method_hyperparameters"][source],
                accepts,
                f"{where}: field 'method_hyperparameters.{source}",
                folder,
            )
    if name in variants:
        given(
            variants[name].get("hyperparameters", {}),
            accepts,
            f"{where}: field 'method_variants.{name}.hyperparameters",
            folder,
        )


def given(hp: dict, accepts: dict, field: str, folder: Path) -> None:
    """Each key must be declared in accepts, each value must fit its schema. `field` is the error's prefix."""
    for key, value in hp.items():
        if key not in accepts:
            close = difflib.get_close_matches(key, accepts, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(
                f"{field}.{key}': {folder.name}'s method.py does not read '{key}' ({hint}it accepts: "
                f"{', '.join(accepts) or 'nothing'}; a new hyperparameter is declared under "
                f"`accepts:` in {folder / 'method.yaml'})"
            )
        errors = list(jsonschema.Draft202012Validator(accepts[key]).iter_errors(value))
        if errors:
            inner = "".join(f".{p}" for p in errors[0].absolute_path)
            raise ConfigError(
                f"{field}.{key}{inner}': {errors[0].message} (the schema under "
                f"`accepts.{key}` in {folder / 'method.yaml'})"
            )


def declared_reads(path: Path | str, accepts: dict, yml: Path | str, defaults: dict | None = None) -> None:
    """Keys method.py reads from `hp` (hp["k"], hp.get("k")) must be declared in `accepts:`. The hint's schema
    follows the key's value in method.yaml's `hyperparameters:` where it has one (a boolean is not an integer)."""
    undeclared = sorted(reads(path) - set(accepts))
    if undeclared:
        hints = ", ".join(f"`{k}: {schema_hint((defaults or {}).get(k))}`" for k in undeclared)
        raise ConfigError(
            f"{yml}: field 'accepts': {path} reads hyperparameter(s) {', '.join(undeclared)}; "
            f"declare each under `accepts:` (e.g. {hints}; `{{}}` takes any value)"
        )


def schema_hint(value) -> str:
    """A JSON schema for a hyperparameter's value, as a method.yaml line would write it."""
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}
    kind = kinds.get(type(value))
    return f"{{type: {kind}}}" if kind else "{}"


def reads(path: Path | str) -> set[str]:
    """{key} of every hp["key"] and hp.get("key", ...) in a method.py (the contract names the argument hp)."""
    keys = set()
    for node in ast.walk(ast.parse(Path(path).read_text(), str(path))):
        if isinstance(node, ast.Subscript) and _is_hp(node.value) and _is_str(node.slice):
            keys.add(node.slice.value)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and _is_hp(node.func.value)
            and node.args
            and _is_str(node.args[0])
        ):
            keys.add(node.args[0].value)
    return keys


def _is_hp(node):
    return isinstance(node, ast.Name) and node.id == "hp"


def _is_str(node):
    return isinstance(node, ast.Constant) and isinstance(node.value, str)
