"""The report's fairness section (issue 13): what fine-tuning forgets, what each score cost to train, and,
when the learning-rate search ran, the tuned score beside the paper-default one.

Summary columns (one row per run, `summary_columns`): forgetting (peftbench.stages.forgetting), training tokens
and FLOPs, and the search's outcome (peftbench.stages.tuning). Training FLOPs are an estimate from counts, per
trained token (Kaplan et al. 2020, Sec. 2.1: forward 2N, backward 4N for a model whose N weights all train):

    C = (4 N + 2 N_trainable) x tokens

forward 2N over every weight; backward 2N for the activation gradients (they flow through the frozen
base too, down to the lowest trained parameter) plus 2 N_trainable for the weight gradients. Full
fine-tuning (N_trainable = N) gives the familiar 6 N x tokens; a frozen-base method costs about 4 N x tokens
however few parameters it trains. N counts every parameter of the trained model once (SmolLM2's tied
embedding is its LM head's matmul); for FT-Top2 the backward stops early, so C is an upper bound there.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter

from peftbench import io
from peftbench.model.flops import train_flops  # C = (4 N + 2 N_trainable) x tokens, the docstring's estimate
from peftbench.report import figures
from peftbench.stats import forgetting as forgetting_stats

ZERO = "0 (nothing trained)"
TUNED = " (tuned)"  # the search's winner of a method, beside the method at its paper rate, in the statistics


def summary_columns(run_dir):
    """This run's fairness columns for summary.csv; runs written before these files existed get NaN."""
    run = Path(run_dir)
    out = {}
    tr = io.read_json(run / "train.json")
    out["learning_rate"] = (tr.get("training") or {}).get("learning_rate")
    out["train_tokens"] = tr.get("train_tokens")
    out["train_flops"] = train_flops(
        tr.get("total_params", 0), tr.get("trainable_params", 0), tr.get("train_tokens", 0)
    )
    fg = _read(run / "forgetting.json")
    out.update(
        forgetting_loss=fg.get("loss"), forgetting_base_loss=fg.get("base_loss"), forgetting_delta=fg.get("delta")
    )
    tuning = _read(run / "tuning.json")
    if tuning and (run / "tuned" / "lm_eval.json").is_file():  # the search finished, its winner evaluated
        for c in tuning["candidates"]:
            out[f"val_loss_lr_x{c['factor']:g}"] = c["val_loss"]
        tuned = io.read_json(run / "tuned" / "lm_eval.json")["peftbench"]
        out.update(
            tuning_validation_records=tuning.get("validation_records"),
            tuned_chosen_share=tuning.get("chosen_share"),  # None where the search kept no per-record losses
            tuned_lr_factor=tuning["chosen_factor"],
            tuned_learning_rate=tuning["chosen_learning_rate"],
            tuned_main_score=tuned["scores"][tuned["main_metric"]],
            tuned_forgetting_delta=_read(run / "tuned" / "forgetting.json").get("delta"),
        )
    return out


def _read(path):
    return io.read_json(path) if Path(path).is_file() else {}


def tuned(summary):
    return "tuned_lr_factor" in summary and summary.tuned_lr_factor.notna().any()


def output_files(reports_dir, tasks, tuning=False):
    d = Path(reports_dir)
    out = {f"compute_{t}": d / "figures" / f"compute-{t}.png" for t in tasks}
    out["forgetting"] = d / "figures" / "forgetting.png"
    out["forgetting_table"] = d / "tables" / "forgetting.csv"
    if tuning:
        out["lr_sensitivity"] = d / "figures" / "lr-sensitivity.png"
        out["tuning_table"] = d / "tables" / "tuning.csv"
    return out


# ---- tables -----------------------------------------------------------------------------------------
def forgetting_table(summary, run_dirs=None, seed_independent=()):
    """method x task: loss on the held-out general text minus the base model's (mean over seeds), and beside
    each task its 95% interval over texts and seeds where the runs' forgetting.json have per-text losses
    (`forgetting_intervals`), with the seed share of its variance and its flags."""
    if "forgetting_delta" not in summary or summary.forgetting_delta.isna().all():
        return pd.DataFrame()
    t = summary.pivot_table(index="method", columns="task", values="forgetting_delta", aggfunc="mean")
    t = t.loc[t.mean(axis=1).sort_values().index].round(4)
    intervals = forgetting_intervals(run_dirs or {}, seed_independent)
    for task in list(t.columns):
        if any(k[0] == task for k in intervals):
            t.insert(
                t.columns.get_loc(task) + 1,
                f"{task} 95% interval",
                [_interval(intervals.get((task, m))) for m in t.index],
            )
    return t.reset_index().rename_axis(columns=None)


def forgetting_intervals(run_dirs, seed_independent=()):
    """{(task, method): Estimate} of the forgetting delta, a paired bootstrap over the sample's texts: every
    run is resampled on the same replicates of the same texts as the base model (peftbench.stats.bootstrap),

        delta_r = sum_i w_ri (loss_i - base_loss_i) / sum_i w_ri tokens_i,

    the mean over seeds on each replicate, widened by the seed-to-seed variance of the delta (variance
    components, as every score: peftbench.stats.forgetting). A trained method with one seed is provisional; one in
    `seed_independent` has seed variance 0. Runs without per-text losses (older forgetting.json) are left out."""
    group = lambda m: m.removesuffix(TUNED)
    return {
        (task, method): fs.contrast({method: 1.0})
        for task, fs in forgetting_stats.per_task(run_dirs, seed_independent, group).items()
        for method in fs.per_seed
    }


def _interval(e):
    if e is None:
        return ""
    return (
        f"[{e.low:+.4f}, {e.high:+.4f}]"
        + (f" seeds {100 * e.seed_share:.0f}%" if e.seeds >= 2 else "")
        + (" provisional" if e.provisional else "")
    )


def tuned_run_dirs(run_dirs):
    """Both arms of the search, for paired statistics on the same test examples: every run at the paper's
    rate as `method`, and the search's winner as `method (tuned)` (the same run where nothing was tuned:
    zero-shot, few-shot, or a search whose winner was never evaluated)."""
    out = {}
    for (task, method, seed), d in run_dirs.items():
        winner = Path(d) / "tuned"
        out[(task, method, seed)] = d
        out[(task, method + TUNED, seed)] = winner if (winner / "samples.jsonl").is_file() else d
    return out


def tuning_table(summary, analyses=None):
    """Per task and method: the paper-default score, the search's chosen rate and the tuned score, and
    the rank of each (1 = best) so a ranking that changes once every method is tuned shows. With
    `analyses` ({task: TaskAnalysis} over both arms, `tuned_run_dirs`): the tuned score's 95% interval and
    the paired difference tuned - paper with its interval and verdict."""
    rows = (
        summary.groupby(["task", "method"])
        .agg(
            metric=("main_metric", "first"),
            lr=("learning_rate", "mean"),
            paper=("main_score", "mean"),
            factor=("tuned_lr_factor", "mean"),
            tuned_lr=("tuned_learning_rate", "mean"),
            tuned=("tuned_main_score", "mean"),
            **({"stability": ("tuned_chosen_share", "mean")} if "tuned_chosen_share" in summary else {}),
        )
        .reset_index()
    )
    rows.loc[rows.factor.isna(), "lr"] = np.nan  # untrained methods (zero-shot, few-shot): nothing to tune,
    rows["tuned"] = rows.tuned.fillna(rows.paper)  # their own score stands in both columns
    rows["rank_paper"] = rows.groupby("task").paper.rank(ascending=False, method="min").astype(int)
    rows["rank_tuned"] = rows.groupby("task").tuned.rank(ascending=False, method="min").astype(int)
    factors = grid(summary)
    if factors:  # every seed's winner at the smallest or largest factor: the best rate may lie beyond the grid
        rows["at grid edge"] = rows.factor.isin([factors[0], factors[-1]])
    if analyses:
        stats = [_tuned_stats(analyses.get(r.task), r.method) for r in rows.itertuples()]
        rows = pd.concat([rows, pd.DataFrame(stats, index=rows.index)], axis=1)
    rows = rows.sort_values(["task", "rank_tuned", "method"])
    return rows.rename(
        columns={
            "lr": "paper lr",
            "paper": "score (paper lr)",
            "factor": "chosen factor",
            "tuned_lr": "chosen lr",
            "tuned": "score (tuned)",
            "rank_paper": "rank (paper lr)",
            "rank_tuned": "rank (tuned)",
            "stability": "share of resamples choosing it",
        }
    ).round(
        {
            "score (paper lr)": 2,
            "score (tuned)": 2,
            **dict.fromkeys(["tuned ci low", "tuned ci high", "tuned - paper", "diff ci low", "diff ci high"], 2),
        }
    )


def grid(summary):
    """The search's learning-rate factors, sorted: one val_loss_lr_x{factor} column of summary.csv each."""
    return sorted({float(c.removeprefix("val_loss_lr_x")) for c in summary if c.startswith("val_loss_lr_x")})


def validation_records(summary):
    """How many validation records each task's search read, from its tuning.json (the profile's tasks.<task>.validation
    as the data stage built it): the report quotes the run, not a number written in the docs."""
    if "tuning_validation_records" not in summary or summary.tuning_validation_records.isna().all():
        return ""
    per_task = summary.dropna(subset=["tuning_validation_records"]).groupby("task").tuning_validation_records.max()
    return "over " + ", ".join(f"{int(n)} validation records ({t})" for t, n in per_task.items())


def choice_stability(table):
    """One sentence: how often the same search on resampled validation records would choose the rate it chose
    (tuning.choice_shares), over the searches that kept per-record losses; '' where none did."""
    col = "share of resamples choosing it"
    if col not in table or table[col].isna().all():
        return ""
    shares = table.dropna(subset=[col])
    low = shares.loc[shares[col].idxmin()]
    return (
        f"Stability of the choice: on validation records drawn again with replacement (2,000 times), the same "
        f"search chooses the same rate in {100 * shares[col].median():.0f}% of draws (median over "
        f"{len(shares)} searches; lowest {100 * low[col]:.0f}%, {low['method']} on {low['task']}); the training "
        "seed's share of that noise is not in this number."
    )


def edge_choices(table, factors):
    """One sentence: which searches chose the grid's smallest or largest factor. There the validation loss was
    still falling at the grid's end, so a wider grid could do better, and the tuned score is what this grid gives,
    not the best the method can do."""
    searched = table[table["chosen factor"].notna()]
    edge = searched[searched.get("at grid edge", pd.Series(False, index=searched.index)).astype(bool)]
    ends = f"x{factors[0]:g} or x{factors[-1]:g}"
    if not len(edge):
        return f"No search chose the grid's edge ({ends}): every winner lies inside the grid."
    return (
        f"{len(edge)} of {len(searched)} searches chose the grid's edge ({ends}): "
        + "; ".join(f"{r.task} {r.method} x{r['chosen factor']:g}" for _, r in edge.iterrows())
        + ". Their validation loss was still falling at the grid's end, so their best rate may lie beyond it and "
        "their tuned score is what this grid gives (widen tuning.lr_factors to know)."
    )


def _tuned_stats(analysis, method):
    """The tuned score's interval and tuned - paper, paired, from one task's two-arm analysis."""
    if analysis is None or not (analysis.has(method) and analysis.has(method + TUNED)):
        return {}
    score, diff = analysis.score(method + TUNED), analysis.difference(method + TUNED, method)
    return {
        "tuned ci low": score.low,
        "tuned ci high": score.high,
        "tuned - paper": diff.value,
        "diff ci low": diff.low,
        "diff ci high": diff.high,
        "tuning changed the score": diff.verdict(),
        "seed share": round(diff.seed_share, 3),
        "provisional": diff.provisional,
    }


def rank_changes(table, analyses=None):
    """One sentence per task whose ranking changed once every method was tuned, with the numbers; with
    `analyses`, one more per pair of methods whose order swapped: is the swap decided (`swap`: the tuned
    difference and the interaction both exclude 0) or not at this budget?"""
    out = []
    for task, t in table.groupby("task"):
        moved = t[t["rank (paper lr)"] != t["rank (tuned)"]]
        if not len(moved):
            out.append(f"{task}: the same ranking at the papers' rates and tuned.")
            continue
        out.append(
            f"{task}: "
            + "; ".join(
                f"{r.method} {int(r['rank (paper lr)'])} -> {int(r['rank (tuned)'])} "
                f"({r['score (paper lr)']:.2f} -> {r['score (tuned)']:.2f} {r.metric})"
                for _, r in moved.iterrows()
            )
            + "."
        )
        if analyses and task in analyses:
            out += _swaps(task, t, analyses[task])
    return out


def swap(analysis, a, b):
    """(tuned a - tuned b, the interaction (tuned a - tuned b) - (paper a - paper b), verdict): a reversal of
    b's lead over a is decided only when both the tuned order and the interaction exclude 0 (a tie at the
    papers' rates that tuning merely leaves a tie, or a noisy paper-rate gap, is not a swap)."""
    d = analysis.difference(a + TUNED, b + TUNED)
    weights = {a + TUNED: 1.0, b + TUNED: -1.0, a: -1.0, b: 1.0}
    x = analysis.contrast(weights)
    if d.verdict() != "better":
        verdict = f"not decided at this budget (tuned order: detectable difference {d.detectable:.1f})"
    elif x.verdict() != "better":
        verdict = f"not decided at this budget (the interaction holds 0: detectable difference {x.detectable:.1f})"
    else:
        verdict = "decided"
        seed = analysis.fragile(weights, lambda e: e.verdict())
        if seed is not None:
            verdict += f", fragile (leaving seed {seed} out undecides it)"
    if d.provisional or x.provisional:
        verdict += " (provisional: a trained method here ran one seed, its seed variance is unknown)"
    return d, x, verdict


def _swaps(task, t, analysis):
    rank = {r.method: (r["rank (paper lr)"], r["rank (tuned)"]) for _, r in t.iterrows()}
    lines = []
    for a, (pa, ta) in rank.items():
        for b, (pb, tb) in rank.items():
            if not (pa > pb and ta < tb) or not all(analysis.has(m) for m in (a, b, a + TUNED, b + TUNED)):
                continue  # a was behind b at the papers' rates and is ahead once both are tuned
            d, x, verdict = swap(analysis, a, b)
            lines.append(
                f"{task}: {a} now ahead of {b}, tuned {a} - tuned {b} = {d.value:+.2f} [{d.low:+.2f}, {d.high:+.2f}]"
                f", interaction (tuned {a} - tuned {b}) - ({a} - {b}) = {x.value:+.2f} [{x.low:+.2f}, {x.high:+.2f}]"
                f": {verdict}."
            )
    return lines


# ---- figures ----------------------------------------------------------------------------------------
def compute_figure(stats, task, colors, path):
    """Main score against training wall time and against estimated training FLOPs (log axes); methods
    that train nothing are dashed lines, as in the score-vs-parameters figure."""
    fig = figures.Figure(figsize=(11, 4.4))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, col, label in [
        (axes[0], "train_wall_s", "training wall time (s)"),
        (axes[1], "train_flops", "training FLOPs, (4N + 2N_trainable) x tokens"),
    ]:
        for method, r in stats.iterrows():
            if not r[col] or np.isnan(r[col]):
                ax.axhline(r.main_score, color=colors[method], ls="--", lw=1.2, label=f"{method} (no training)")
                continue
            ax.plot(r[col], r.main_score, "o", ms=8, color=colors[method], label=method)
            ax.annotate(method, (r[col], r.main_score), textcoords="offset points", xytext=(5, 4), fontsize=8)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # decades only: minor labels overlap
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{task}: {stats.main_metric.iloc[0]}")
    axes[1].legend(fontsize=7, loc="best")
    fig.suptitle(f"{task}: score against training cost (mean over seeds)")
    return figures._save(fig, path)


def forgetting_figure(summary, colors, path):
    """Per method, loss on the held-out general text minus the base model's, one marker per task."""
    if "forgetting_delta" not in summary or summary.forgetting_delta.isna().all():
        fig, ax = figures._figure((7, 1.5))
        ax.text(0.5, 0.5, "no forgetting.json in these runs", ha="center", va="center")
        ax.set_axis_off()
        return figures._save(fig, path)
    t = summary.groupby(["method", "task"]).forgetting_delta.mean().unstack()
    t = t.loc[t.mean(axis=1).sort_values().index]
    fig, ax = figures._figure((7, 0.35 * len(t) + 1.6))
    y = np.arange(len(t))
    ax.barh(y, t.mean(axis=1), color=[colors[m] for m in t.index], alpha=0.6)
    for j, task in enumerate(t.columns):
        ax.plot(t[task], y, figures.MARKERS[j % len(figures.MARKERS)], color="black", ms=5, label=task)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, t.index)
    ax.set_xlabel("general-text loss - base model's (nats/token); > 0: forgot")
    ax.legend(fontsize=7)
    return figures._save(fig, path)


def sensitivity_figure(summary, colors, path):
    """Validation loss against learning rate (as a factor of each method's own rate, given in the legend) per
    method, one panel per task; the search's choice ringed."""
    cols = sorted(
        (c for c in summary if c.startswith("val_loss_lr_x")), key=lambda c: float(c.removeprefix("val_loss_lr_x"))
    )
    tasks = sorted(summary.task.unique())
    fig = figures.Figure(figsize=(5 * len(tasks), 4))
    axes = np.atleast_1d(fig.subplots(1, len(tasks), squeeze=False)[0])
    for ax, task in zip(axes, tasks):
        rows = summary[(summary.task == task) & summary.tuned_lr_factor.notna()]
        factors = [float(c.removeprefix("val_loss_lr_x")) for c in cols]
        for method, g in rows.groupby("method"):
            losses = g[cols].mean().to_numpy(dtype=float)
            ax.plot(
                factors, losses, "-o", color=colors[method], label=f"{method} (x1 = {g.learning_rate.mean():.2g})", ms=4
            )
            for f in g.tuned_lr_factor:  # the choice of each seed
                ax.plot([f], [g[f"val_loss_lr_x{f:g}"].mean()], "o", ms=10, mfc="none", mec="black")
        ax.set_xscale("log")
        ax.set_xticks(factors, [f"x{f:g}" for f in factors])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("learning rate, relative to the method's own (paper) rate")
        ax.set_title(task)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation loss after training")
    axes[-1].legend(fontsize=7)
    return figures._save(fig, path)


# ---- the section ------------------------------------------------------------------------------------
def section(summary, colors, out, Section, Table, Figure, tuned_analyses=None, run_dirs=None, seed_independent=()):
    """The report's Section: forgetting, equal-compute figures and, when tuning ran, tuned vs paper default.
    Section/Table/Figure: the report's own classes, passed in so that this module needs no import of
    peftbench.report.report (which imports it)."""
    items, text = (
        [],
        [
            "Forgetting: each run's loss on a fixed held-out sample of general text (Wikipedia leads that no task "
            "uses), minus the base model's loss on the same sample (nats per token; zero-shot is 0 by construction; "
            "> 0 means the fine-tune made general text less likely). Its 95% interval is a paired bootstrap over the "
            "sample's texts (the same resampling as the base model's loss) widened by the seed-to-seed variance "
            "(as every score; 'seeds x%' its share, 'provisional' for one seed of a trained method): an interval "
            "that holds 0 is no detectable forgetting at this budget.",
            "Training cost: wall time as measured, and FLOPs estimated as (4N + 2N_trainable) x trained tokens, with "
            "N every parameter of the trained model: forward 2N, activation gradients 2N (through the frozen base "
            "too), weight gradients 2N_trainable; full fine-tuning is the usual 6N x tokens.",
        ],
    )
    forget = forgetting_table(summary, run_dirs, seed_independent)
    with io.atomic_path(out["forgetting_table"]) as tmp:
        forget.to_csv(tmp, index=False)
    forgetting_figure(summary, colors, out["forgetting"])
    if len(forget):
        base = summary.forgetting_base_loss.dropna()
        items.append(
            Table(
                "Forgetting: general-text loss minus the base model's"
                + (f" (base: {base.iloc[0]:.4f} nats/token)" if len(base) else ""),
                forget,
            )
        )
    else:
        items.append("Forgetting: no run has a forgetting.json (runs from before it was measured).")
    items.append(
        Figure(
            "Forgetting per method",
            out["forgetting"],
            "Loss on the held-out general text minus the base model's; bars: mean over tasks, markers: tasks.",
        )
    )
    for task in sorted(summary.task.unique()):
        key = f"compute_{task}"
        if key not in out:
            continue
        stats = (
            summary[summary.task == task]
            .groupby("method")
            .agg(
                main_score=("main_score", "mean"),
                main_metric=("main_metric", "first"),
                train_wall_s=("train_wall_s", "mean"),
                train_flops=("train_flops", "mean"),
            )
        )
        compute_figure(stats, task, colors, out[key])
        items.append(
            Figure(
                f"{task}: score against training cost",
                out[key],
                "Main score against training wall time and estimated training FLOPs (log axes): "
                "further up and left gives more per unit of compute.",
            )
        )
    if tuned(summary) and "tuning_table" in out:
        table = tuning_table(summary, tuned_analyses)
        with io.atomic_path(out["tuning_table"]) as tmp:
            table.to_csv(tmp, index=False)
        factors = grid(summary)
        text.append(
            "Equal tuning budget: every trained method trained at its own (paper) learning rate x "
            + ", ".join(f"{f:g}" for f in factors)
            + " on the same steps; the lowest validation loss "
            + validation_records(summary)
            + " picked the winner (the test split is never read), which alone was evaluated again. Ranks: 1 = best."
        )
        text.append(edge_choices(table, factors))
        text.append(choice_stability(table))
        text += rank_changes(table, tuned_analyses)
        items.append(
            Table("Tuned vs paper default: main score at the paper's learning rate and at the search's choice", table)
        )
        sensitivity_figure(summary, colors, out["lr_sensitivity"])
        items.append(
            Figure(
                "Learning-rate sensitivity",
                out["lr_sensitivity"],
                "Validation loss after training against learning rate, per method and task; ringed: "
                "the search's choice.",
            )
        )
    return Section("A fair race: forgetting, training cost, tuning", text, items)
