"""The report's figures (matplotlib's object API, no pyplot state; PNG): one colour per method across
every figure.

- score against trainable parameters (log axis), Pareto front marked, per task
- training loss curves per method, per task
- latency overhead per method (per-run, relative to zero-shot; or the cost measurement's CSV)
- storage per method (log axis), beside one full checkpoint
"""

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from peftbench import io
from peftbench.report import tables

ZERO_SHOT = "zero-shot"  # the base model alone: the latency reference, and the 0-parameter point
MARKERS = "os^Dvx"
DPI = 110


def method_colors(methods):
    cmap = colormaps["tab10" if len(methods) <= 10 else "tab20"]
    return {m: cmap(i % cmap.N) for i, m in enumerate(sorted(methods))}


def _figure(figsize):
    fig = Figure(figsize=figsize)  # Agg canvas, nothing global: safe in any process
    return fig, fig.subplots()


def figure_text(fig):
    """(titles, every text) the figure draws: its titles, axis labels, legend entries and annotations (not the
    tick numbers). Saved into the PNG (tEXt 'Title', 'Description') so the report's <img> carries its title and
    the browser check can read what an image says (scripts/check_report_browser.py: no 'nan' in it)."""
    titles = [t for t in [fig.get_suptitle()] if t]
    texts = []
    for ax in fig.axes:
        titles += [t for t in (ax.get_title(loc) for loc in ("left", "center", "right")) if t]
        texts += [ax.get_xlabel(), ax.get_ylabel(), *(t.get_text() for t in ax.texts)]
        legend = ax.get_legend()
        if legend is not None:
            texts += [legend.get_title().get_text(), *(t.get_text() for t in legend.get_texts())]
    return titles, [t for t in titles + texts if t]


def png_text(path):
    """The text chunks of a PNG (tEXt and uncompressed iTXt) as {keyword: text}; {} for another format."""
    data, out, at = Path(path).read_bytes(), {}, 8
    if not data.startswith(b"\x89PNG"):
        return out
    while at + 8 <= len(data):
        size, kind = int.from_bytes(data[at : at + 4], "big"), data[at + 4 : at + 8]
        chunk = data[at + 8 : at + 8 + size]
        if kind == b"tEXt":
            key, _, value = chunk.partition(b"\0")
            out[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"iTXt" and chunk.split(b"\0", 1)[1][:1] == b"\0":  # compression flag 0
            key, rest = chunk.split(b"\0", 1)
            out[key.decode("latin-1")] = rest[2:].split(b"\0", 2)[2].decode("utf-8")
        at += 12 + size
    return out


def _save(fig, path):
    path = Path(path)
    titles, texts = figure_text(fig)
    meta = {"Title": " | ".join(titles), "Description": " | ".join(texts)} if path.suffix == ".png" else None
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix[1:], dpi=DPI, bbox_inches="tight", metadata=meta)
    return path


def score_vs_params(stats, metric, task, colors, path):
    """Main score against trainable parameters; the Pareto front (no method has fewer parameters and a
    higher score) joined by a step line. Methods with no trainable parameters sit on a dashed line."""
    fig, ax = _figure(figsize=(7, 4.6))
    trained, seen = stats[stats.trainable_params > 0], []
    for method, r in stats.iterrows():
        on_front = bool(r.pareto)
        if r.trainable_params == 0:
            ax.axhline(r[metric], color=colors[method], ls="--", lw=1.2, label=f"{method} (0 params)")
            continue
        ax.errorbar(
            r.trainable_params,
            r[metric],
            yerr=r[metric + "_std"] if r.seeds > 1 else None,
            fmt="o",
            ms=9 if on_front else 7,
            color=colors[method],
            mec="black" if on_front else colors[method],
            mew=1.6 if on_front else 0.5,
            capsize=3,
        )
        same_x = seen.count(r.trainable_params)  # labels of equal parameter counts step down
        seen.append(r.trainable_params)
        ax.annotate(
            method, (r.trainable_params, r[metric]), textcoords="offset points", xytext=(6, 4 - 11 * same_x), fontsize=8
        )
    front = trained[trained.pareto].sort_values("trainable_params")
    if len(front):
        ax.step(
            front.trainable_params,
            front[metric],
            where="post",
            color="black",
            lw=1,
            alpha=0.6,
            label="Pareto front (black rim)",
        )
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (log scale)")
    ax.set_ylabel(f"{metric} (main metric)")
    ax.set_title(f"{task}: score against trainable parameters")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def loss_axes(curves):
    """(methods on a scale of their own, top of the shared axis or None) for one task's loss curves.

    A method whose median loss is over twice the median method's (scratch, trained from random weights:
    8-11 nats against 3-5) would flatten every other curve on a shared axis: it gets a right-hand axis of
    its own. And where the shared curves' first steps reach more than twice as high above their lowest
    point as every later step does (LoReFT's first step at 8.8 against at most 5 after it), the shared
    axis stops just above the later steps; the points above are marked at its top edge with their values."""
    means = {m: g.groupby("step").loss.mean() for m, g in curves.groupby("method")}
    medians = {m: float(v.median()) for m, v in means.items() if len(v)}
    if not medians:
        return [], None
    typical = float(np.median(list(medians.values())))
    own = sorted(m for m, v in medians.items() if typical > 0 and v > 2 * typical)
    shared = [v for m, v in means.items() if m not in own and len(v)]
    later = [v[v.index > v.index.min()] for v in shared]
    if not shared or not any(len(v) for v in later):
        return own, None
    low = min(float(v.min()) for v in shared)
    top, later_top = max(float(v.max()) for v in shared), max(float(v.max()) for v in later if len(v))
    if top - low > 2 * (later_top - low) > 0:
        return own, later_top + 0.15 * (later_top - low)
    return own, None


def loss_note(own, clip):
    """What loss_axes did, in words (the report's caption)."""
    notes = [f"{', '.join(own)} in a panel of its own, on its own scale (its loss is far higher)"] if own else []
    if clip is not None:
        notes.append(f"the y axis is cut at {clip:.2f}: higher first steps are marked ▲ with their value")
    return "; ".join(notes)


def loss_curves(curves, task, colors, path):
    """Training loss per optimisation step, one line per method (mean over seeds, band = min..max); a method
    far above the others in a panel of its own, first-step spikes clipped (loss_axes)."""
    curves = curves[curves.task == task]
    own, clip = loss_axes(curves)
    fig = Figure(figsize=(9.5 if own else 7, 4.6))
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1.3]}) if own else [fig.subplots()]
    ax = axes[0]
    for method, g in curves.groupby("method"):
        on = axes[-1] if method in own else ax
        by_step = g.groupby("step").loss
        mean = by_step.mean()
        on.plot(mean.index, mean.values, marker=".", color=colors[method], label=method)
        if g.seed.nunique() > 1:
            on.fill_between(mean.index, by_step.min(), by_step.max(), color=colors[method], alpha=0.15)
        if clip is not None and on is ax:
            for step, v in mean[mean > clip].items():
                ax.plot([step], [clip], "^", color=colors[method], ms=8, clip_on=False)
                ax.annotate(f"{v:.1f}", (step, clip), textcoords="offset points", xytext=(6, -10), fontsize=7)
    if clip is not None:
        ax.set_ylim(top=clip)
    for a in axes:
        a.set_xlabel("step")
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
        a.grid(alpha=0.3)
    ax.set_ylabel("training loss (mean token cross-entropy)")
    cut = f"\ny axis cut at {clip:.2f} (▲: higher first steps)" if clip is not None else ""
    ax.set_title(f"{task}: training loss{cut}", fontsize=12 if not cut else 10)
    if own:
        axes[-1].set_title(f"{', '.join(own)}: own scale\n(loss far higher)", fontsize=10)
    handles = [h for a in axes for h in a.get_legend_handles_labels()[0]]
    labels = [lab for a in axes for lab in a.get_legend_handles_labels()[1]]
    if handles:  # below the plot, where it hides no curve
        ax.legend(handles, labels, fontsize=8, ncol=5, loc="upper left", bbox_to_anchor=(0, -0.13), frameon=False)
    else:
        ax.text(0.5, 0.5, "no training steps recorded", ha="center", transform=ax.transAxes)
    return _save(fig, path)


def latency_overhead(summary, colors, path):
    """Per method, generation latency relative to zero-shot (the base model alone) on the same task
    and seed: one dot per task, the bar is the mean. Without a zero-shot run, absolute ms/token."""
    fig, ax = _figure(figsize=(7, 0.45 * summary.method.nunique() + 1.5))
    has_base = (summary.method == ZERO_SHOT).any()
    df = summary.copy()
    if has_base:
        base = df[df.method == ZERO_SHOT].set_index(["task", "seed"]).latency_ms_per_token
        df["value"] = 100 * (df.latency_ms_per_token / base.reindex(list(zip(df.task, df.seed))).values - 1)
    else:
        df["value"] = df.latency_ms_per_token
    order = df.groupby("method").value.mean().sort_values().index
    tasks = sorted(df.task.unique())
    for y, method in enumerate(order):
        g = df[df.method == method]
        ax.barh(y, g.value.mean(), color=colors[method], alpha=0.6)
        for t, task in enumerate(tasks):  # one marker per task, spread across the bar
            v = g[g.task == task].value
            ax.plot(
                v,
                [y + 0.6 * ((t + 0.5) / len(tasks) - 0.5)] * len(v),
                MARKERS[t % len(MARKERS)],
                color="black",
                ms=4,
                label=task if y == 0 else None,
            )
    ax.set_yticks(range(len(order)), order)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("latency overhead vs zero-shot, % of ms/token" if has_base else "ms per generated token")
    ax.legend(fontsize=8, title="task", title_fontsize=8)
    ax.set_title("Generation latency per method (batch 1, greedy)")
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, path)


def _col(df, *needles, avoid=()):
    for c in df.columns:
        name = c.lower()
        if all(n in name for n in needles) and not any(a in name for a in avoid):
            return c
    return None


def _setting(row, parts):
    """A panel's title from the row's setting columns: a missing value (generation per token has no fixed
    sequence length) is left out rather than printed as 'nan tokens', and a whole float reads as an integer
    (a column with a gap is read as floats: '128 tokens', not '128.0 tokens')."""
    import pandas as pd

    shown = []
    for c, fmt in parts:
        v = row[c]
        if pd.isna(v) or (isinstance(v, str) and not v.strip()):
            continue
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        shown.append(fmt.format(v))
    return ", ".join(shown)


def latency_overhead_vs_paper(csv_path, path):
    """From the cost measurement's CSV: our overhead % per variant, one panel per setting (measure, batch,
    sequence length), the paper's beside it (hatched) and the FLOPs estimate (triangles) where given.
    Column names are matched loosely: variant or method; overhead; paper+overhead; flop; noise (error
    bar); setting or measure/batch/seq_len."""
    import pandas as pd

    df = pd.read_csv(csv_path)
    method = _col(df, "variant") or _col(df, "method")
    ours = _col(df, "overhead", avoid=("paper", "flop"))
    paper, flops = _col(df, "paper", "overhead"), _col(df, "flop")
    if method is None or ours is None:
        raise ValueError(f"{csv_path}: no variant/method column or no overhead column in {list(df.columns)}")
    noise = _col(df, "noise")
    parts = [
        (c, fmt)
        for c, fmt in (
            (_col(df, "setting"), "{}"),
            (_col(df, "measure"), "{}"),
            (_col(df, "batch"), "batch {}"),
            (_col(df, "seq"), "{} tokens"),
        )
        if c
    ]
    df["_setting"] = df.apply(lambda r: _setting(r, parts), axis=1) if parts else ""
    settings = list(dict.fromkeys(df["_setting"]))
    fig = Figure(figsize=(min(4.5 * len(settings), 16) + 1, 4))
    axes = fig.subplots(1, len(settings), squeeze=False, sharey=True)
    for ax, s in zip(axes[0], settings):
        g = df[df["_setting"] == s]
        x = np.arange(len(g))
        ax.bar(x - 0.2, g[ours], 0.4, yerr=g[noise] if noise else None, capsize=2, label="ours", color="tab:blue")
        if paper and g[paper].notna().any():
            ax.bar(x + 0.2, g[paper], 0.4, label="paper", color="white", edgecolor="tab:orange", hatch="//")
        if flops and g[flops].notna().any():
            ax.plot(x, g[flops], "k^", label="FLOPs estimate")
        ax.set_xticks(x, g[method], rotation=35, ha="right", fontsize=8)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_title(s, fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].set_ylabel("latency overhead vs base, %")
    axes[0][0].legend(fontsize=8)
    return _save(fig, path)


def storage(summary, colors, path):
    """Bytes stored per task by each method (log axis), beside one full checkpoint."""
    per = summary.groupby("method").storage_bytes.median().sort_values()
    full = tables.full_checkpoint_bytes(summary)
    fig, ax = _figure(figsize=(7, 0.45 * len(per) + 1.5))
    ax.barh(range(len(per)), per.values, color=[colors[m] for m in per.index])
    ax.axvline(full, color="black", ls="--", lw=1)
    for y, b in enumerate(per.values):  # a column of labels right of the full checkpoint line
        ax.text(full * 4, y, f"{tables.fmt_bytes(b)}  ({tables.fmt_pct(100 * b / full)})", va="center", fontsize=8)
    ax.set_yticks(range(len(per)), per.index)
    ax.set_xscale("log")
    ax.set_xlim(max(1, per.min() / 10), full * 3e4)
    ax.set_xlabel("bytes stored per task (log scale); label: size and % of one full checkpoint")
    ax.set_title(f"Storage per task and method (dashed: one full checkpoint, {tables.fmt_bytes(full)})", fontsize=11)
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, path)


def time_per_rule(jobs, path):
    """Total wall time per rule kind (horizontal bars), split into useful work and fixed cost where defined."""
    if not len(jobs):
        fig, ax = _figure((7, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no benchmark files (runs made before the rules recorded them)", ha="center", va="center")
        return _save(fig, path)
    total = jobs.groupby("rule").wall_s.sum().sort_values()
    useful = jobs.groupby("rule").useful_s.sum(min_count=1).reindex(total.index)
    fig, ax = _figure((7, 0.45 * len(total) + 1.2))
    y = np.arange(len(total))
    work = useful.fillna(0).clip(upper=total)
    ax.barh(y, work, color="#4c72b0", label="useful work (training loop; lm-eval scoring, forgetting)")
    ax.barh(y, total - work, left=work, color="#c8c8c8", label="fixed cost / the whole job")
    ax.set_yticks(y, total.index)
    ax.set_xlabel("wall time, summed over jobs (s)")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    return _save(fig, path)
