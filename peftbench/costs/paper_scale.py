"""Paper-scale parameter and storage accounting: the papers' architectures built from their configs on the
meta device (shapes only: GPT-3 175B costs no memory, nothing is downloaded), each method applied with the
paper's setting through its own methods/<name>/method.py, and the trainable parameters and the bytes of a
task checkpoint counted beside the figure the paper prints.

    python -m peftbench.costs.paper_scale --out results/costs/paper_scale.csv     # writes the CSV, prints the table

The figures, settings and explanations are in peftbench/papers/paper_figures.yaml, the closed forms in
paper_figures.py; the architectures in config/paper_architectures.yaml. What it takes to run the methods on the meta device:
  * `attach` runs as written, under torch.device("meta"), so what it adds (adapters, peft's LoRA matrices,
    a 1.2B-parameter prefix MLP on GPT-3) is shapes too;
  * `task_state` runs as written, except that peft copies a computed prefix to the CPU, which a meta tensor
    refuses: there it runs again under torch's FakeTensorMode, where that copy is metadata too;
  * LoReFT: torch's orthogonal parametrisation cannot build its d x d `base` on meta (its QR has no meta
    kernel and torch swallows the NotImplementedError), so R cannot be evaluated after `attach`. The
    trainable count comes from `attach`, the stored state from the model as `load` builds it (R plain).
A checkpoint's bytes are its stored elements x the architecture's checkpoint dtype (fp16 for GPT-3: the
paper's 350 GB is 175B x 2 bytes); tensors stored under two names (tied weights) count once.
"""

import argparse
import copy
import functools
import re
from pathlib import Path

import pandas as pd
import torch
import transformers
import yaml
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.multiprocessing.reductions import StorageWeakRef

from peftbench import io
from peftbench.methods import count_parameters, load_module
from peftbench.model import fused_qkv
from peftbench.model.fused_qkv import SplitQKV  # noqa: F401  (re-exported: tests and notebooks use ps.SplitQKV)
from peftbench.papers.paper_figures import FIGURES, INLINE, RATIOS, Figure, Ratio
from peftbench.paths import ROOT

ARCHITECTURES = ROOT / "config" / "paper_architectures.yaml"
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
UNITS = {
    "K": ("params", 1e3),
    "M": ("params", 1e6),
    "%": ("% of base", 1.0),
    "MB": ("checkpoint bytes", 1e6),
    "GB": ("checkpoint bytes", 1e9),
    "×": ("ratio", 1.0),
}


def architectures() -> dict[str, dict]:
    return yaml.safe_load(ARCHITECTURES.read_text())["architectures"]


@functools.cache
def _template(name):
    arch = architectures()[name]
    cfg = transformers.AutoConfig.for_model(arch["model_type"], **arch["config"])
    with torch.device("meta"):
        return getattr(transformers, arch["auto_class"]).from_config(cfg)


def build(name: str) -> torch.nn.Module:
    """A fresh meta-device model of a config/paper_architectures.yaml architecture (methods modify theirs)."""
    return copy.deepcopy(_template(name))


def split_qkv(model: torch.nn.Module) -> torch.nn.Module:
    """GPT-2's fused c_attn as W_q, W_k, W_v (peftbench.model.fused_qkv), so that LoRA can adapt W_q and W_v alone."""
    return fused_qkv.split(model, "attn.c_attn")


def stored_numel(state: dict[str, torch.Tensor]) -> int:
    """Elements of a task state as saved: a tensor under two names (tied weights) is stored once, as
    peftbench.methods.save_state stores it."""
    seen, n = set(), 0
    for t in state.values():
        key = (StorageWeakRef(t.untyped_storage()), t.storage_offset(), tuple(t.shape))
        if key not in seen:
            seen.add(key)
            n += t.numel()
    return n


def method_hp(method: str, arch: dict, overrides: dict) -> dict:
    """method.yaml's hyperparameters, then the architecture's module names, then the figure's setting."""
    spec = yaml.safe_load((ROOT / "methods" / method / "method.yaml").read_text())
    return {**(spec.get("hyperparameters") or {}), **arch.get("method_hp", {}).get(method, {}), **overrides}


def _apply(figure, arch, model):
    """attach the figure's method to a meta model -> (trainable, stored) element counts."""
    if figure.count in INLINE:
        attach, task_state = INLINE[figure.count]
        hp, module = dict(figure.hp), None
    else:
        module = load_module(ROOT / "methods" / figure.count)
        attach, task_state = module.attach, module.task_state
        hp = method_hp(figure.count, arch, figure.hp)
    with torch.device("meta"):
        model = attach(model, hp)
        trainable = count_parameters(model)[0]
        if figure.count == "loreft":  # see the module docstring
            model = module._install(build(figure.model), hp, trainable=False)
    try:
        state = task_state(model)
    except NotImplementedError:  # "Cannot copy out of meta tensor": see the docstring
        with FakeTensorMode(allow_non_fake_inputs=True):
            state = task_state(model)
    return trainable, stored_numel(state)


def measure(figure: Figure) -> dict:
    """One figure -> our trainable and stored counts, the base model's size and what a percentage is of."""
    arch = architectures()[figure.model]
    model = build(figure.model)
    if figure.split_qkv:
        split_qkv(model)
    base = count_parameters(model)[1]
    denominator = (
        base
        if figure.of.startswith("base")
        else sum(p.numel() for n, p in model.named_parameters() if n.startswith(figure.of))
    )
    if figure.count is None:
        trainable = stored = figure.formula[0]
        counted_by = "the paper's formula (no method here)"
    else:
        trainable, stored = _apply(figure, arch, model)
        counted_by = (
            ("inline in paper_figures.py" if figure.count in INLINE else f"methods/{figure.count}")
            + (" on W_q, W_k, W_v split from c_attn" if figure.split_qkv else "")
            + (" (stored: R as `load` builds it)" if figure.count == "loreft" else "")
        )
    if figure.of == "base+trained":
        denominator += trainable
    return {
        "trainable": trainable,
        "stored": stored,
        "base": base,
        "denominator": denominator,
        "bytes": stored * DTYPE_BYTES[arch["checkpoint_dtype"]],
        "dtype": arch["checkpoint_dtype"],
        "counted_by": counted_by,
    }


def parse_printed(text: str) -> tuple[str, float, float]:
    """'0.35M' -> ('params', 350000.0, 5000.0): the quantity, its value and half a unit of its last printed
    digit (for an integer, of its last non-zero digit: '350 GB' is 345-355 GB, '10,000×' is 5,000-15,000×)."""
    match = re.fullmatch(r"([\d,]*\.?\d+)\s*(K|M|%|MB|GB|×)", text.strip())
    if not match:
        raise ValueError(f"paper figure {text!r}: expected a number with one of {', '.join(UNITS)}")
    digits, unit = match.group(1).replace(",", ""), match.group(2)
    quantity, scale = UNITS[unit]
    last = -len(digits.split(".")[1]) if "." in digits else len(digits) - len(digits.rstrip("0"))
    return quantity, float(digits) * scale, 0.5 * 10.0**last * scale


def _row(source, model, method, setting, paper, our, note, **more):
    quantity, value, half = parse_printed(paper)
    return {
        "source": source,
        "model": model,
        "method": method,
        "setting": setting,
        "paper": paper,
        "compared": quantity,
        "paper_value": value,
        "our_value": our,
        "rel_diff_pct": 100 * (our - value) / value,
        "within_rounding": abs(our - value) <= half * (1 + 1e-9),
        **more,
        "note": note,
    }


def table(figures: list[Figure] = FIGURES, ratios: list[Ratio] = RATIOS) -> pd.DataFrame:
    """Every figure measured: one row per paper figure, ours beside it (numbers, for the CSV)."""
    rows, storage = [], {}
    for c in figures:
        m = measure(c)
        quantity = parse_printed(c.paper)[0]
        our = {
            "params": m["stored"],
            "% of base": 100 * m["stored"] / m["denominator"],
            "checkpoint bytes": m["bytes"],
        }[quantity]
        if c.key:
            storage[c.key] = m["bytes"]
        rows.append(
            _row(
                c.source,
                c.model,
                c.method,
                c.setting,
                c.paper,
                our,
                c.note,
                our_params=m["stored"],
                our_trainable=m["trainable"],
                base_params=m["base"],
                our_pct=100 * m["stored"] / m["denominator"],
                checkpoint_dtype=m["dtype"],
                our_storage_bytes=m["bytes"],
                formula=f"{c.formula[1]} = {c.formula[0]:,}" if c.formula else "",
                formula_value=c.formula[0] if c.formula else None,
                code_equals_formula=m["stored"] == c.formula[0] if c.formula and c.count else None,
                counted_by=m["counted_by"],
            )
        )
    for r in ratios:
        rows.append(
            _row(
                r.source,
                r.model,
                r.method,
                r.setting,
                r.paper,
                storage[r.numerator] / storage[r.denominator],
                r.note,
                formula=f"{storage[r.numerator]:,} B / {storage[r.denominator]:,} B",
                counted_by="the two checkpoint rows above",
            )
        )
    return pd.DataFrame(rows)


def _fmt(quantity, v):
    if quantity == "params":
        return f"{v / 1e6:,.2f}M ({int(v):,})"
    if quantity == "% of base":
        return f"{v:.4f}%"
    if quantity == "checkpoint bytes":
        return (f"{v / 1e9:,.2f} GB" if v >= 1e9 else f"{v / 1e6:,.2f} MB") + f" ({int(v):,} B)"
    return f"{v:,.0f}×"


def display(df: pd.DataFrame) -> pd.DataFrame:
    """The table people read: ours in the paper's unit, the relative difference, the formula, why.
    Works on `table()` or on the CSV read back (pd.read_csv)."""
    df = df.fillna({"formula": "", "note": ""})
    return pd.DataFrame(
        {
            "source": df.source,
            "model": df.model,
            "method": df.method,
            "setting": df.setting,
            "paper": df.paper,
            "ours": [_fmt(q, v) for q, v in zip(df.compared, df.our_value)],
            "diff": [f"{d:+.2f}%" for d in df.rel_diff_pct],
            "within rounding": df.within_rounding.map({True: "yes", False: "no"}),
            "formula (paper's, at the setting)": df.formula,
            "note": df.note,
        }
    )


def main(argv: list[str] | None = None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(
        prog="python -m peftbench.costs.paper_scale",
        description=(
            "Trainable parameters and task-checkpoint bytes of the papers' methods on the papers' architectures, "
            "built on the meta device, beside the papers' figures."
        ),
    )
    ap.add_argument(
        "--out", type=Path, required=True, help="the CSV to write (atomically), e.g. results/costs/paper_scale.csv"
    )
    args = ap.parse_args(argv)
    df = table()
    with io.atomic_path(args.out) as tmp:
        df.to_csv(tmp, index=False)
    print(display(df).to_markdown(index=False))
    return df


if __name__ == "__main__":
    main()
