"""The papers' own figures that the report sets beside ours, each cited by table: the figures are data in
papers.yaml (orderings: a paper's ranking of methods with its scores; budgets: its trainable and stored
shares); here is their loading and lookup. Each paper row names the method folders (or a profile's method
variants) that play it here; the first one that ran is used. An ordering is compared on the paper's own task
when the profile ran it (config/paper-*.yaml), else on the closest of ours, and the report says which and why."""

from dataclasses import dataclass
from pathlib import Path

import yaml

from peftbench.papers import protocols


@dataclass(frozen=True)
class Ordering:
    """A paper's ranking of methods on one setting (papers.yaml says what each field holds)."""

    source: str
    setting: str
    tasks: tuple  # groups of our task names
    why: str
    rows: tuple  # (paper's name, our methods that play it, paper's score)
    models: tuple = ()
    skip_models: tuple = ()
    column: str = ""  # a summary column compared instead of the task's main score (forgetting_delta)
    lower_is_better: bool = False  # the paper's and our order run from the lowest value
    protocol: str | None = None  # the setup its rows ran under (papers.yaml protocols)
    row_protocols: tuple = ()  # per row: its protocols.Protocol (the ordering's, or the row's own), or None


@dataclass(frozen=True)
class Budget:
    """A paper's trainable-parameter share (and stored share, where it gives one) for one of our methods."""

    method: str
    source: str
    paper_model: str
    trainable_pct: float
    stored_pct: float | None = None
    note: str = ""
    models: tuple = ()  # the figure for these base models; () = the default figure


def _ordering(o: dict) -> Ordering:
    rows = tuple((name, tuple(methods), score) for name, methods, score, *_ in o["rows"])
    # a row's optional fourth field: its own protocol, or overrides of the ordering's
    setups = tuple(protocols.for_row(o.get("protocol"), r[3] if len(r) > 3 else None) for r in o["rows"])
    lists = {k: tuple(o[k]) for k in ("models", "skip_models") if k in o}
    return Ordering(**{**o, **lists, "tasks": tuple(map(tuple, o["tasks"])), "rows": rows, "row_protocols": setups})


def _budget(b: dict) -> Budget:
    b = {**b, **({"models": tuple(b["models"])} if "models" in b else {})}
    if "trainable_m" in b:  # the paper prints a count: its share of the paper's base model
        b["trainable_pct"] = 100 * b.pop("trainable_m") / b.pop("base_m")
    return Budget(**b)


_DATA = yaml.safe_load(Path(__file__).with_name("papers.yaml").read_text())
COMMONSENSE = tuple(_DATA["commonsense"])
ORDERINGS = [_ordering(o) for o in _DATA["orderings"]]
BUDGETS = [_budget(b) for b in _DATA["budgets"]]


def budget_for(method: str, model: str) -> Budget | None:
    """The paper's figure for `method` on our base `model`: the model's own entry, else the default."""
    entries = [b for b in BUDGETS if b.method == method]
    return next((b for b in entries if model in b.models), next((b for b in entries if not b.models), None))


def applies(ordering: Ordering, model: str) -> bool:
    """Whether the paper's ordering is compared on runs of our base `model`."""
    return (not ordering.models or model in ordering.models) and model not in ordering.skip_models
