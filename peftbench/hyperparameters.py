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
    """Every selected method (a variant: its parent folder's `accepts:`), and every hyperparameter given for it."""
    variants = cfg.get("method_variants", {})
    for name in methods:
        spec = method_specs[name]
        folder = Path(spec["dir"])
        accepts = spec["accepts"]
        yml = folder / "method.yaml"
        declared_reads(folder / "method.py", accepts, yml)
        own = load_yaml(yml)["hyperparameters"]
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


def declared_reads(path: Path | str, accepts: dict, yml: Path | str) -> None:
    """Keys method.py reads from `hp` (hp["k"], hp.get("k")) must be declared in `accepts:`."""
    undeclared = sorted(reads(path) - set(accepts))
    if undeclared:
        raise ConfigError(
            f"{yml}: field 'accepts': {path} reads hyperparameter(s) {', '.join(undeclared)}; "
            f"declare each under `accepts:` (e.g. `{undeclared[0]}: {{type: integer}}`, or `{{}}` for any value)"
        )


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
