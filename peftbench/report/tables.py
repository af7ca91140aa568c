"""The report's tables: per task, one row per method (numbers as data, then formatted for reading),
and the papers' figures beside ours. Written as CSV (numbers) and LaTeX (booktabs) for papers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from peftbench.papers import papers, protocols

if TYPE_CHECKING:
    from peftbench.stats.bootstrap import Estimate
    from peftbench.stats.task import TaskAnalysis

FULL = "full"  # the method whose stored state is a full checkpoint: the storage and step-time reference
COSTS = [
    "latency_ms_per_token",
    "train_wall_s",
    "tokens_per_s",
    "train_gflop_per_s",
    "peak_memory_bytes",
    "step_time_s",
]


def pareto_front(params: Sequence[float], scores: Sequence[float]) -> np.ndarray:
    """True where no other method has at most as many trainable parameters and at least the score,
    and is strictly better in one of the two (the methods worth considering at their budget)."""
    p, s = np.asarray(params, float), np.asarray(scores, float)
    dominated = [((p <= p[i]) & (s >= s[i]) & ((p < p[i]) | (s > s[i]))).any() for i in range(len(p))]
    return ~np.array(dominated, dtype=bool)


def full_checkpoint_bytes(runs: pd.DataFrame) -> float:
    """Bytes of one full checkpoint: what full fine-tuning stored, else the base model in fp32."""
    full = runs[runs.method == FULL]
    return float(full.storage_bytes.mean()) if len(full) else float(runs.base_params.iloc[0]) * 4


def _metrics(spec):
    return [spec["main_metric"]] + [m for m in spec["metrics"] if m != spec["main_metric"]]


def method_stats(runs: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """One task's runs (summary rows) -> one numeric row per method, mean and std over seeds, sorted by
    the main metric (best first)."""
    g = runs.groupby("method", sort=False)
    metrics = [m for m in _metrics(spec) if f"score_{m}" in runs.columns]  # a metric added after the runs: absent
    out = pd.DataFrame({"seeds": g.size()})
    for col in [f"score_{m}" for m in metrics] + [c for c in COSTS if c in runs.columns]:  # a cost added later: absent
        out[col.removeprefix("score_")] = g[col].mean()
        out[col.removeprefix("score_") + "_std"] = g[col].std(ddof=1)  # NaN for one seed
    for col in ("trainable_params", "trainable_percent", "storage_bytes", "base_params"):
        out[col] = g[col].first()
    out["storage_pct_of_full"] = 100 * out.storage_bytes / full_checkpoint_bytes(runs)
    full_step = out.step_time_s.get(FULL, np.nan)
    out["step_time_vs_full"] = out.step_time_s / full_step
    out["pareto"] = pareto_front(out.trainable_params, out[spec["main_metric"]])
    return out.sort_values(spec["main_metric"], ascending=False, kind="stable").rename_axis("method")


# ---- formatting: every cell reads as a number with its unit -------------------------------------
def fmt_params(n: float) -> str:
    return f"{n / 1e6:,.2f}M" if n >= 1e5 else f"{int(n):,}"


def fmt_pct(x: float) -> str:
    """4 significant digits, never in exponent notation (0.00000743%, not 7.43e-06%)."""
    return np.format_float_positional(float(x), precision=4, unique=True, fractional=False, trim="-") + "%"


def _unit(b):
    return next(((u, s) for u, s in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)) if b >= s), ("B", 1))


def fmt_bytes(b: float, std: float = np.nan) -> str:
    unit, size = _unit(b)
    if size == 1:
        return f"{int(b)} B"
    return f"{b / size:,.1f}" + (f" ± {std / size:.1f}" if std == std else "") + f" {unit}"


def fmt_mean_std(mean: float, std: float, digits: int = 2) -> str:
    if mean != mean:
        return "n/a"
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std == std else "")


MARK = {"better": "better", "worse": "worse", "no detectable difference": "≈"}


def fmt_interval(e: Estimate, digits: int = 2, sign: str = "") -> str:
    """value [low, high]: a score or a paired difference with its 95% interval."""
    return f"{e.value:{sign}.{digits}f} [{e.low:{sign}.{digits}f}, {e.high:{sign}.{digits}f}]"


def fmt_flags(e: Estimate) -> str:
    """Where the interval's variance comes from, and what it cannot know: ' seeds 42%' (the seed share of
    the variance, when a seed-dependent method in it has several seeds), ' exact' (Clopper-Pearson for a
    0/n cell), ' 200 resamples' (a bounded bootstrap), ' provisional' (a trained method in it has one seed:
    its seed variance is unknown)."""
    out = f" seeds {100 * e.seed_share:.0f}%" if e.seeds >= 2 else ""
    if e.interval.startswith("exact"):
        out += " exact"
    if e.interval.endswith(" resamples"):  # fewer than the shared 2,000 (a metric rescored per resample)
        out += " " + e.interval.rsplit(", ", 1)[-1]
    return out + (" provisional" if e.provisional else "")


def _score_cell(r, m, method, analysis, main=False):
    if analysis is not None and analysis.has(method, m):
        cell = fmt_interval(analysis.score(method, m)) + fmt_flags(analysis.score(method, m))
        st = analysis.stability(method, m) if main else None
        if st is not None and st.unstable:
            cell += f" unstable (seeds {st.low:.2f}–{st.high:.2f})"
        return cell
    return fmt_mean_std(r[m], r[m + "_std"])


def _diff_cell(method, ref, analysis):
    """main metric: method - ref, paired, with its interval and a marker (better / worse / ≈), the seed
    share of its variance, and 'fragile' when leaving one seed out changes the marker."""
    if analysis is None or method == ref or not (analysis.has(method) and analysis.has(ref)):
        return "--"
    d = analysis.difference(method, ref)
    cell = f"{fmt_interval(d, 1, '+')} {MARK[d.verdict()]}{fmt_flags(d)}"
    if (
        d.verdict() != "no detectable difference"
        and analysis.fragile({method: 1, ref: -1}, lambda e: e.verdict()) is not None
    ):
        cell += " fragile"
    return cell


def display(stats: pd.DataFrame, spec: dict, analysis: TaskAnalysis | None = None) -> pd.DataFrame:
    """The table people read: strings, main metric first and marked (each score with its 95% interval over
    test examples and seeds when per-example scores are there, the seed share of its variance and its
    flags), the paired differences to full fine-tuning and to zero-shot, then the costs."""
    metrics = [m for m in _metrics(spec) if m in stats.columns]
    several = (stats.seeds > 1).any()
    rows = []
    for method, r in stats.iterrows():
        row = {"method": method}
        for m in metrics:
            main = m == spec["main_metric"]
            row[m + (" (main)" if main else "")] = _score_cell(r, m, method, analysis, main)
        if several:
            main = spec["main_metric"]
            s = analysis.by_metric[main].seeds(method) if analysis is not None and analysis.has(method) else None
            row["seed std (main)"] = (
                fmt_mean_std(s.std, float("nan")) + (f" [{s.low:.2f}, {s.high:.2f}]" if s.n > 1 else "")
                if s is not None and s.n > 1
                else "--"
            )
        for ref in ("full", "zero-shot"):
            row[f"vs {ref} (main)"] = _diff_cell(method, ref, analysis)
        row.update(
            {
                "trainable params": fmt_params(r.trainable_params),
                "% of base": fmt_pct(r.trainable_percent),
                "storage": fmt_bytes(r.storage_bytes),
                "% of full ckpt": fmt_pct(r.storage_pct_of_full),
                "latency ms/token": fmt_mean_std(r.latency_ms_per_token, r.latency_ms_per_token_std, 1),
                "train s": fmt_mean_std(r.train_wall_s, r.train_wall_s_std, 1),
                "step time × full": fmt_mean_std(r.step_time_vs_full, np.nan),
                "tokens/s": fmt_mean_std(r.tokens_per_s, r.tokens_per_s_std, 1),
                "GFLOP/s": fmt_mean_std(r.get("train_gflop_per_s", np.nan), r.get("train_gflop_per_s_std", np.nan), 1),
                "peak memory": fmt_bytes(r.peak_memory_bytes, r.peak_memory_bytes_std),
                "seeds": str(int(r.seeds)),
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(df: pd.DataFrame) -> str:
    cells = lambda values: "| " + " | ".join(str(v).replace("|", "\\|") for v in values) + " |"
    return "\n".join(
        [
            cells(df.columns),
            "|" + "|".join("---" for _ in df.columns) + "|",
            *(cells(rec) for rec in df.itertuples(index=False)),
        ]
    )


def latex(df: pd.DataFrame, caption: str, label: str, prose: bool = False) -> str:
    """booktabs (\\toprule/\\midrule/\\bottomrule) through pandas' Styler. Numbers right-aligned; prose
    columns wrap (p{} columns sharing the line). ±, ×, > and -> in math mode: a bare > prints as ¿ in
    LaTeX's default OT1 font encoding."""
    n = len(df.columns)
    columns = "".join(f"p{{{0.95 / n:.3f}\\linewidth}}" for _ in range(n)) if prose else "l" + "r" * (n - 1)
    styler = df.style.hide(axis="index").format(escape="latex", na_rep="--").format_index(escape="latex", axis=1)
    tex = styler.to_latex(caption=caption, label=label, hrules=True, position_float="centering", column_format=columns)
    return (
        tex.replace("±", r"$\pm$")
        .replace("×", r"$\times$")
        .replace("≈", r"$\approx$")
        .replace("−", "-")
        .replace(" > ", " $>$ ")
        .replace(" < ", " $<$ ")
        .replace("->", r"$\to$")
    )


# ---- papers beside ours -------------------------------------------------------------------------
def _pairs_in_same_order(a, b):
    n = len(a)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    same = sum(np.sign(a[i] - a[j]) == np.sign(b[i] - b[j]) for i, j in pairs)
    return same, len(pairs)


def _group_scores(runs, tasks, task_specs, column=""):
    """Mean main score (or `column`'s value) per method over the tasks of one group (a method must have run
    on each of them)."""
    if column and column not in runs:
        return pd.Series(dtype=float)
    per_task = [
        runs[runs.task == t].groupby("method")[column or f"score_{task_specs[t]['main_metric']}"].mean() for t in tasks
    ]
    return pd.concat(per_task, axis=1).dropna().mean(axis=1)


def paper_orderings(
    summary: pd.DataFrame, task_specs: dict[str, dict], trained: dict[tuple, dict] | None = None
) -> pd.DataFrame:
    """Each paper's ranking beside ours: on the paper's own task when it ran, else on the closest of
    ours. Paper rows whose methods did not run are left out; a comparison needs two. On the paper's own task,
    each row's setup against the paper's protocol (`setups`), from `trained`: {(model, task, method): a train.json}."""
    rows = []
    for model, runs in summary.groupby("model"):
        for o in (o for o in papers.ORDERINGS if papers.applies(o, model)):
            ran = [tuple(t for t in group if t in task_specs and (runs.task == t).any()) for group in o.tasks]
            which = next((i for i, tasks in enumerate(ran) if tasks), None)
            if which is None:
                continue
            tasks = ran[which]
            ours = _group_scores(runs, tasks, task_specs, o.column)
            kept = [
                (name, next(m for m in methods if m in ours.index), score, setup)
                for (name, methods, score), setup in zip(o.rows, o.row_protocols or [None] * len(o.rows))
                if any(m in ours.index for m in methods)
            ]
            if len(kept) < 2:
                continue
            metric = o.column or task_specs[tasks[0]]["main_metric"]
            sign, fmt = (1, ".3f") if o.lower_is_better else (-1, ".1f")  # the better first
            sep = " < " if o.lower_is_better else " > "
            paper_order = sep.join(f"{name} {s:g}" for name, _, s, _ in sorted(kept, key=lambda r: sign * r[2]))
            our_order = sep.join(
                f"{m} {ours[m]:{fmt}}" for m in sorted((m for _, m, _, _ in kept), key=lambda m: sign * ours[m])
            )
            same, total = _pairs_in_same_order([s for _, _, s, _ in kept], [ours[m] for _, m, _, _ in kept])
            where = (
                f"{tasks[0]} ({metric})" if len(tasks) == 1 else f"mean of {len(tasks)}: {', '.join(tasks)} ({metric})"
            )
            rows.append(
                {
                    "source": o.source,
                    "paper setting": o.setting,
                    "paper order": paper_order,
                    "our task": where,
                    "our order": our_order,
                    "pairs in the paper's order": f"{same}/{total}",
                    "why this task": "the paper's own task" if which == 0 else o.why,
                    "setup vs the paper's": setups(kept, model, tasks, runs, task_specs, trained or {})
                    if which == 0
                    else "a stand-in: our model, task, training and decoding, not the paper's protocol",
                }
            )
    return pd.DataFrame(rows)


def setups(kept, model: str, tasks: tuple, runs: pd.DataFrame, task_specs: dict, trained: dict[tuple, dict]) -> str:
    """Per paper row: the protocol it ran under in the paper and every recorded setting in which our run differs
    (peftbench.papers.protocols), generated from the run's train.json and the task's files, never written by hand."""
    from peftbench import config

    task = tasks[0]  # a group's members share one training (a union) and one decoding setting
    yml = Path(task_specs[task].get("dir") or config.TASKS / task) / "lm_eval.yaml"
    generation = (config.lm_eval_yaml(yml).get("generation_kwargs") or {}) if yml.is_file() else {}
    cells = []
    for name, method, _, setup in kept:
        if setup is None:
            cells.append(f"{name}: the paper's protocol is not recorded (papers.yaml protocols)")
            continue
        train = trained.get((model, task, method))
        if train is None:
            cells.append(f"{name} [{setup.name}]: our run's train.json was not read")
            continue
        seeds = int(runs[(runs.task == task) & (runs.method == method)].seed.nunique())
        our = protocols.ours(model, train, seeds, generation, task_specs[task].get("prompt"))
        found = protocols.differences(setup, our)
        cells.append(
            f"{name} [{setup.name}]: "
            + ("; ".join(found) if found else "every setting the paper's protocol records, as the paper's")
        )
    return " | ".join(cells)


def paper_budgets(summary: pd.DataFrame) -> pd.DataFrame:
    """Trainable share (and stored share) of the base model: the paper's figure beside ours."""
    rows = []
    full = full_checkpoint_bytes(summary)
    for (model, method), runs in summary.groupby(["model", "method"], sort=False):
        b = papers.budget_for(method, model)
        if b is None:
            continue
        rows.append(
            {
                "method": method,
                "source": b.source,
                "paper model": b.paper_model,
                "paper trainable": fmt_pct(b.trainable_pct),
                "our trainable": fmt_pct(runs.trainable_percent.iloc[0]),
                "paper stored": fmt_pct(b.stored_pct) if b.stored_pct is not None else "--",
                "our stored (of full ckpt)": fmt_pct(100 * runs.storage_bytes.iloc[0] / full),
                "note": b.note or "--",
            }
        )
    return pd.DataFrame(rows)


def fmt_number(v: float) -> str:
    """A measurement as people read it: 354,823,168 not 3.548e+08; 4 significant digits below 10,000."""
    if v != v:
        return "--"
    if abs(v) >= 1e4 or (float(v).is_integer() and abs(v) >= 1e3):
        return f"{v:,.0f}"
    return f"{v:.4g}"


def read_cost_table(path: Path | str) -> pd.DataFrame:
    """Any CSV of the cost measurements, shown as it is (numbers formatted for reading)."""
    df = pd.read_csv(path)
    for col in df.select_dtypes("number").columns:
        df[col] = df[col].map(fmt_number)
    return df.fillna("--")
