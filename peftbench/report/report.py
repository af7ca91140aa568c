"""results/ -> reports/: report.md, a self-contained report.html (figures embedded), and the tables as
CSV and LaTeX (booktabs) under reports/tables/, the figures as PNG under reports/figures/.

Per task: one row per method with its scores (main metric first), trainable parameters (count and % of
the base model), storage (bytes of the stored task state, and % of one full checkpoint), latency (median
ms per generated token, batch 1), training time, step time relative to full fine-tuning, tokens/s, achieved
GFLOP/s and peak memory; mean ± std when there are several seeds. Then the figures, the papers' figures beside
ours, and any cost tables given.

Regenerate from existing results, never training or evaluating (reads results/, writes reports/):

    python -m peftbench.report                               # the default profile
    python -m peftbench.report --configfile config/smoke.yaml
"""

import argparse
import base64
import html
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from peftbench import config, io, preflight, provenance
from peftbench.paths import ROOT
from peftbench.report import aggregate, explore, fairness, figures, tables, timing
from peftbench.report.stale import stale_runs
from peftbench.stats import claims as claims_mod
from peftbench.stats import task as task_stats

RUN_FILES = ("train.json", "lm_eval.json", "latency.json")
TABLES_JS = (Path(__file__).parent / "report_tables.js").read_text()  # sort / filter the tables in the browser
EXPLORE_JS = (Path(__file__).parent / explore.JS).read_text()  # the interactive charts (peftbench/report/explore.py)
COST_TITLES = {  # the cost measurements' CSVs (results/costs/), by file name; any other CSV is titled by its name
    "paper_scale.csv": "Trainable parameters and storage at the papers' scale: the paper's figure beside our formula",
    "latency_overhead.csv": "Inference latency overhead: the paper's figure beside ours",
    "task_switch.csv": "Task switching: time to swap one task's stored state, against loading a full checkpoint",
}
INTRO = (
    "Scores from lm-eval on each task's test split. Trainable parameters as % of the base model; "
    "storage = bytes a user ships per task (a peft method's adapter_config.json + adapter_model.safetensors, "
    "otherwise the task state's safetensors), and its share of one full "
    "checkpoint (what full fine-tuning stores); latency = median ms per generated token, greedy, "
    "batch 1, the same prompts for every method; train s = training wall time; step time × full = "
    "seconds per optimisation step relative to full fine-tuning; tokens/s = trained (non-padding) tokens per "
    "second of the training loop (checkpoint writes and validation left out); GFLOP/s = the training FLOPs "
    "estimate, (4N + 2N_trainable) x tokens, per second of the loop (benchmarks/gemm_fraction.py sets it against "
    "the machine's GEMM rate); peak memory = the training process's peak. Mean ± std (sample std) over seeds when there are several. "
    "Scores: the seed mean [95% interval] covering both test-set sampling and training seeds: a seeded "
    "bootstrap over the test examples (2,000 resamples shared by every method; percentile intervals, BCa for "
    "corpus metrics, which are recomputed on each resample: from sufficient statistics for BLEU, chrF and the E2E "
    "metrics; a corpus metric rescored from its texts gets the first 200 resamples, and its cells say '200 "
    "resamples') widened by the seed-to-seed variance (variance "
    "components, SE² = SE_test² + s_seed²/S, Welch-Satterthwaite degrees of freedom). 'seeds x%': the share "
    "of the interval's variance that comes from seeds. A method that cannot depend on its seed (zero-shot) "
    "has seed variance 0; a trained method with one seed has it unknown: its cells and verdicts are "
    "'provisional'. 'unstable (seeds a–b)': the seed standard deviation exceeds one run's test standard error "
    "(the seeds spread beyond what resampling the test set moves one run); 'exact': a 0/n or n/n cell's "
    "Clopper-Pearson interval. vs full / vs zero-shot: the paired difference in the main metric (same "
    "resampled examples for both methods) with its 95% interval: better / worse when the interval excludes "
    "0, ≈ when no difference is detectable at this budget (the smallest detectable one is given per task); "
    "'fragile': leaving one seed out changes that marker. These ▲/▼ comparisons are each at 95%, not "
    "corrected for their number (the claims are)."
)


@dataclass
class Table:
    title: str
    df: pd.DataFrame
    prose: bool = False  # cells are sentences (wrap, left-aligned), not numbers


@dataclass
class Figure:
    title: str
    path: Path
    caption: str


@dataclass
class Html:
    """A part of report.html only (the interactive charts); report.md gets `md` in its place."""

    html: str
    md: str


@dataclass
class Section:
    title: str
    text: list = field(default_factory=list)
    items: list = field(default_factory=list)


def _is_latency(path):
    return "latency" in Path(path).name


def output_files(reports_dir, tasks, costs=None, tuning=False):
    """{name: path} of everything the report writes: the Snakemake rule declares exactly these."""
    d = Path(reports_dir)
    out = {"md": d / "report.md", "html": d / "report.html"}
    for t in tasks:
        out[f"table_{t}"] = d / "tables" / f"{t}.csv"
        out[f"latex_{t}"] = d / "tables" / f"{t}.tex"
        out[f"pareto_{t}"] = d / "figures" / f"pareto-{t}.png"
        out[f"loss_{t}"] = d / "figures" / f"loss-{t}.png"
    out["intervals"] = d / "tables" / "intervals.csv"
    out["claims"] = d / "tables" / "claims.csv"
    out["claims_latex"] = d / "tables" / "claims.tex"
    out["time_per_rule"] = d / "tables" / "time-per-rule.csv"
    out["time_per_rule_figure"] = d / "figures" / "time-per-rule.png"
    out["latency"] = d / "figures" / "latency.png"
    out["storage"] = d / "figures" / "storage.png"
    for name in ("paper-order", "paper-budget"):
        out[name.replace("-", "_")] = d / "tables" / f"{name}.csv"
        out[name.replace("-", "_") + "_latex"] = d / "tables" / f"{name}.tex"
    for title, csv in (costs or {}).items():
        out[f"costs_{Path(csv).stem}_latex"] = d / "tables" / f"costs-{Path(csv).stem}.tex"
    if any(_is_latency(p) for p in (costs or {}).values()):
        out["latency_paper"] = d / "figures" / "latency-paper.png"
    out.update(fairness.output_files(d, tasks, tuning))
    return {k: Path(v) for k, v in out.items()}


def loss_curves(train_jsons):
    """Long table (task, method, seed, step, loss) from each run's train.json loss_curve."""
    rows = []
    for p in train_jsons:
        tr = io.read_json(p)
        rows += [
            {"task": tr["task"], "method": tr["method"], "seed": tr["seed"], "step": i + 1, "loss": loss}
            for i, loss in enumerate(tr.get("loss_curve") or [])
        ]
    return pd.DataFrame(rows, columns=["task", "method", "seed", "step", "loss"])


def _write_table(df, csv, tex, caption, label, prose=False):
    with io.atomic_path(csv) as tmp:
        df.to_csv(tmp, index=False)
    if tex is not None:
        io.write_text(tex, tables.latex(df, caption, label, prose) if len(df) else f"% {caption}: no rows\n")


def _task_section(task, runs, spec, colors, curves, out, analysis=None):
    stats = tables.method_stats(runs, spec)
    metric = spec["main_metric"]
    shown = tables.display(stats, spec, analysis)
    _write_table(stats.reset_index(), out[f"table_{task}"], None, "", "")
    io.write_text(
        out[f"latex_{task}"],
        tables.latex(shown, f"{task}: {spec['description']}. Main metric: {metric}.", f"tab:{task}"),
    )
    figures.score_vs_params(stats, metric, task, colors, out[f"pareto_{task}"])
    figures.loss_curves(curves, task, colors, out[f"loss_{task}"])
    loss_note = figures.loss_note(*figures.loss_axes(curves[curves.task == task]))  # what the figure rescaled
    front = ", ".join(stats.index[stats.pareto])
    best = stats.index[0]
    text = [
        f"{spec['description']}. Main metric: {metric}.",
        f"Best {metric}: {best} ({stats[metric].iloc[0]:.2f}). Pareto front (no other method has at most as "
        f"many trainable parameters and a higher {metric}): {front}.",
    ]
    found = {ref: analysis.detectable(ref) for ref in task_stats.REFERENCES} if analysis is not None else {}
    if any(v is not None for v in found.values()):
        text.append(
            f"{analysis.n} test examples. Smallest difference in {metric} this budget detects (80% power, "
            f"5% level; (t_0.975 + t_0.8) × the paired standard error over examples and seeds, median over "
            f"methods): "
            + "; ".join(f"vs {ref}: {v:.1f} points" for ref, v in found.items() if v is not None)
            + ". A smaller true difference shows as ≈ (no detectable difference), not as an order."
        )
    if analysis is not None:
        text += analysis.notes
    return Section(
        task,
        text,
        [
            Table(f"{task}: every method, best {metric} first", shown),
            Figure(
                f"{task}: score against trainable parameters",
                out[f"pareto_{task}"],
                f"{metric} against trainable parameters (log axis); the Pareto front ({front}) is joined by a "
                f"step line and drawn with a black rim; methods with no trainable parameters are dashed lines.",
            ),
            Figure(
                f"{task}: training loss",
                out[f"loss_{task}"],
                "Training loss per optimisation step, one line per method (mean over seeds; band: min to max)"
                + (f"; {loss_note}." if loss_note else "."),
            ),
        ],
    )


def _explore_section(summary, frames, curves, colors):
    intervals = pd.concat(frames) if frames else pd.DataFrame(columns=["task", "method", "metric"])
    data = explore.payload(summary, intervals, curves, colors)
    return Section(
        "Explore",
        [
            "Every task's methods, score against the cost you pick (trainable parameters, storage, latency, "
            "training FLOPs, forgetting), with the Pareto front for those two axes; and the training loss per step, "
            "methods hidden by unticking them, a log axis on request. Hover a point or a line for its numbers."
        ],
        [Html(explore.html(data), "(interactive in report.html; the same numbers are in the task tables above)")],
    )


def _cost_section(summary, colors, costs, out):
    figures.storage(summary, colors, out["storage"])
    figures.latency_overhead(summary, colors, out["latency"])
    items = [
        Figure(
            "Storage per method",
            out["storage"],
            "Bytes each method stores per task (median over tasks and seeds; log axis), beside one full "
            "checkpoint (dashed).",
        ),
        Figure(
            "Latency overhead per method",
            out["latency"],
            "Median ms per generated token relative to zero-shot (the base model alone) on the same task "
            "and seed; bars: mean over tasks, markers: tasks. Measured beside other jobs on a shared machine: "
            "differences of a few tens of % are noise; see the cost measurements for controlled numbers.",
        ),
    ]
    latency_csv = next((p for p in (costs or {}).values() if _is_latency(p)), None)
    if latency_csv is not None:
        figures.latency_overhead_vs_paper(latency_csv, out["latency_paper"])
        items.append(
            Figure(
                "Latency overhead: paper vs ours",
                out["latency_paper"],
                f"From {Path(latency_csv).name}: our overhead % per variant, one panel per setting "
                f"(solid), the paper's (hatched, LoRA Table 1) and the FLOPs estimate (triangles) where given.",
            )
        )
    return Section("Costs across tasks", [], items)


def _paper_section(summary, task_specs, costs, out, run_dirs=None):
    order = tables.paper_orderings(summary, task_specs, _first_seed_runs(summary, run_dirs or {}))
    budget = tables.paper_budgets(summary)
    _write_table(
        order,
        out["paper_order"],
        out["paper_order_latex"],
        "The papers' ordering of methods beside ours on the closest task",
        "tab:paper-order",
        prose=True,
    )
    _write_table(
        budget,
        out["paper_budget"],
        out["paper_budget_latex"],
        "Trainable and stored share of the base model: paper vs ours",
        "tab:paper-budget",
        prose=True,
    )
    text = [
        "The papers' numbers are copied from the tables cited; their models, data and training budgets "
        "differ from this profile's, so an ordering that differs here is a finding about this setting, "
        "not a failed reproduction."
    ]
    items = []
    for title, df, empty in [
        ("Parameter budget: the paper's share beside ours", budget, "no method of the papers ran"),
        (
            "Ordering of methods: the paper's beside ours on the closest task",
            order,
            "fewer than two methods of any paper's comparison ran",
        ),
    ]:
        items.append(Table(title, df, prose=True) if len(df) else f"{title}: {empty}.")
    for title, csv in (costs or {}).items():
        df = tables.read_cost_table(csv)
        io.write_text(
            out[f"costs_{Path(csv).stem}_latex"], tables.latex(df, title, f"tab:costs-{Path(csv).stem}", prose=True)
        )
        items.append(
            Table(f"{title} ({Path(csv).name})", df, prose=True)
            if len(df)
            else f"{title}: {Path(csv).name} has no rows."
        )
    return Section("Papers vs ours", text, items)


def _time_section(jobs, out):
    table = timing.per_rule(jobs)
    _write_table(table, out["time_per_rule"], None, "", "")
    figures.time_per_rule(jobs, out["time_per_rule_figure"])
    if not len(jobs):
        return Section(
            "Where the time goes",
            ["No benchmark files under results/benchmarks/ (runs made before the rules recorded them)."],
        )
    text = [
        f"Snakemake's benchmark file of each of the {len(jobs)} jobs (results/benchmarks/): wall time per rule "
        "kind. Fixed cost = the job's wall time minus its useful work (the training loop; lm-eval's scoring and "
        "the forgetting measurement, both results of this report): imports, model loads, validation passes, saving "
        "and checks, the latency probe."
    ]
    return Section(
        "Where the time goes",
        text,
        [
            Table("Wall time per rule kind", table),
            Figure(
                "Wall time per rule kind",
                out["time_per_rule_figure"],
                "Summed over jobs; blue: useful work, grey: fixed cost "
                "(or the whole job where no useful part is defined).",
            ),
        ],
    )


def _claims_section(checks, out, counts=None):
    columns = ["claim", "where", "test", "estimate", "verdict", "flags", "p_value", "power"]
    df = pd.DataFrame([c.__dict__ for c in checks], columns=columns).rename(columns={"p_value": "p"})
    df["p"] = df.p.map(lambda p: f"{p:.3g}" if p == p else "--")
    _write_table(
        df,
        out["claims"],
        out["claims_latex"],
        "The papers' claims, each with a verdict from this run",
        "tab:claims",
        prose=True,
    )
    summary = claims_table(claims_mod.load(), checks)
    text = [
        "Each claim is a testable statement with a margin fixed in advance (config/claims.yaml, where a claim is "
        "added). Reproduced: the whole 95% interval is on the claim's side of the margin; contradicted: wholly on "
        "the other side; inconclusive at this budget: the interval straddles the margin (the detectable "
        "difference says how large a true difference this budget could see). Score claims are tested per "
        "task on the main metric as a paired contrast whose interval covers test examples and training seeds "
        "(a margin may be fixed per task, or relative: method − (1 ± r) × than > 0); 'power' gives the distance "
        "from the margin a true value must have for the test to decide it with 80% power. A decisive verdict "
        "also needs its interval's end more than 2 Monte Carlo standard errors (the bootstrap's own noise) from "
        "the margin. Flags: provisional (a trained method in it ran one seed, so its seed variance is unknown), "
        "fragile (leaving one seed out changes the verdict). Timing claims are drawn only when the base-vs-base "
        "control row lies within the claim's control margin; its spread is added to the interval. Forgetting "
        "claims (forgets_less) compare two methods' general-text loss increase as one paired bootstrap over the "
        "same texts, widened by the seeds, and print both target scores beside it: they are not at equal target "
        "score, and say which method learned more. Learning-rate claims (lr_ratio) compare the rates the search "
        "chose (config/tuning.yaml), with an interval from resampling its seeds; a winner at the grid's edge "
        "leaves them inconclusive. A claim 'not run' names the profile or overlay that runs it.",
        _test_count(checks, counts or {}),
    ]
    return Section(
        "Claims and verdicts",
        text,
        [Table("Claims: overall verdict", summary, prose=True), Table("Claims: every test", df, prose=True)],
    )


def claims_table(claims, checks):
    """The first section's table: every claim of claims.yaml, old and new, with its source, margin (stated
    before the run), overall verdict and flags; a claim 'not run' says which profile or overlay runs it."""
    rows = []
    for c in claims:
        mine = [k for k in checks if k.claim == c["id"]]
        verdict = claims_mod.overall(mine) if mine else claims_mod.NOT_RUN
        if claims_mod.NOT_RUN in verdict and c.get("runs_in"):
            verdict += f" (runs with --configfile {c['runs_in']})"
        rows.append(
            {
                "claim": c["id"],
                "statement": c["claim"],
                "source": c["source"],
                "margin": claims_mod.margin_text(c),
                "verdict": verdict,
                "flags": claims_mod.overall_flags(mine),
            }
        )
    return pd.DataFrame(rows, columns=["claim", "statement", "source", "margin", "verdict", "flags"])


def _test_count(checks, counts):
    """How many tests the report makes, and which family the false discovery rate is controlled over."""
    family = claims_mod.family_size(checks)
    other = sum(c.p_value != c.p_value and not c.verdict.startswith(claims_mod.NOT_RUN) for c in checks)
    parts = [f"{family} paired tests of the claims (scores and forgetting)"] + [
        f"{n} {what}" for what, n in counts.items() if n
    ]
    total = family + other + sum(counts.values())
    return (
        f"This report makes {total} tests: " + ", ".join(parts) + f", {other} exact, timing or learning-rate "
        f"claim tests (no p, not in the family). The false discovery rate is controlled (Benjamini-Hochberg, "
        f"q = {claims_mod.FDR:g}) over the family of the {family} paired tests of the claims (one per claim and "
        "task that ran); a decisive verdict there that the procedure does not "
        "reject is shown as inconclusive with its p. The table comparisons and tuning comparisons are each at 95% "
        "and not corrected: read them as descriptions, the claims as the tests."
    )


def table_comparisons(analyses):
    """The number of ▲/▼ comparisons in the task tables (every method against full and zero-shot)."""
    n = 0
    for a in analyses.values():
        ts = a.by_metric.get(a.main_metric)
        if ts is not None:
            n += sum(ref in ts.point and m != ref for ref in task_stats.REFERENCES for m in ts.point)
    return n


def analyses_of(task_specs, tasks, run_dirs, seed_independent=()):
    """{task: TaskAnalysis} from the runs' samples.jsonl; run_dirs: {(task, method, seed): folder};
    seed_independent: the methods whose result cannot depend on the seed (config.seed_dependent False); a
    method's tuned arm inherits its method's."""
    return {
        t: task_stats.analyse(
            t,
            task_specs[t]["dir"],
            task_specs[t]["main_metric"],
            {(m, s): d for (task, m, s), d in run_dirs.items() if task == t},
            seed_independent=tuple(seed_independent),
            group=lambda m: m.removesuffix(fairness.TUNED),
        )
        for t in tasks
    }


def seed_independent_methods(cfg, method_specs, methods):
    """The profile's methods whose result cannot depend on their seed (zero-shot): seed variance 0."""
    return sorted(m for m in methods if not config.seed_dependent(cfg, method_specs[m]))


def build(
    summary,
    curves,
    reports_dir,
    task_specs,
    missing=(),
    costs=None,
    made_by=(),
    failed=(),
    run_dirs=None,
    jobs=None,
    warnings=(),
    seed_independent=(),
):
    """Write every file of output_files(); return {name: path}. `missing`: one line per run that has no
    complete result (listed in the report); `costs`: {title: csv} of the cost measurements; `failed`: one
    line per cost measurement (or method in one) that failed; `run_dirs`: {(task, method, seed): run
    folder} whose samples.jsonl give the intervals and the claims' verdicts; `jobs`: timing.jobs() rows;
    `warnings`: the data stage's (test records leaking from training), shown first; `seed_independent`: the
    methods whose result cannot depend on the seed (seed variance 0; any other method with one seed is
    provisional)."""
    tasks = [t for t in task_specs if (summary.task == t).any()]
    out = output_files(reports_dir, tasks, costs, fairness.tuned(summary))
    colors = figures.method_colors(summary.method.unique())
    analyses = analyses_of(task_specs, tasks, run_dirs or {}, seed_independent)
    frames = [a.frame() for a in analyses.values()]
    with io.atomic_path(out["intervals"]) as tmp:
        (pd.concat(frames) if frames else pd.DataFrame()).to_csv(tmp, index=False)
    latency_csv = next((p for p in (costs or {}).values() if _is_latency(p)), None)
    checks = claims_mod.evaluate(claims_mod.load(), analyses, summary, latency_csv, run_dirs, seed_independent)
    sections = [Section("Data warnings", list(warnings))] if warnings else []
    tuned_analyses = (
        analyses_of(task_specs, tasks, fairness.tuned_run_dirs(run_dirs or {}), seed_independent)
        if fairness.tuned(summary)
        else None
    )
    counts = {"▲/▼ comparisons in the task tables": table_comparisons(analyses)}
    if tuned_analyses:
        counts["tuned-vs-paper comparisons"] = sum(
            a.has(m) and a.has(m + fairness.TUNED) for a in tuned_analyses.values() for m in summary.method.unique()
        )
    sections.append(_claims_section(checks, out, counts))
    sections += [
        _task_section(t, summary[summary.task == t], task_specs[t], colors, curves, out, analyses[t]) for t in tasks
    ]
    sections.append(_explore_section(summary, frames, curves, colors))
    sections.append(_cost_section(summary, colors, costs, out))
    sections.append(
        fairness.section(summary, colors, out, Section, Table, Figure, tuned_analyses, run_dirs, seed_independent)
    )
    sections.append(_time_section(jobs if jobs is not None else timing.jobs("/nonexistent", ""), out))
    sections.append(_paper_section(summary, task_specs, costs, out, run_dirs))
    if missing:
        sections.append(Section("Missing runs", list(missing)))
    if failed:
        sections.append(Section("Failed cost measurements", list(failed)))
    if made_by:
        sections.append(Section("Provenance", ["Recorded by each run in its train.json."] + list(made_by)))
    commits = ", ".join(str(c)[:10] for c in summary.git_commit.dropna().unique()) or "n/a"
    head = (
        f"Model: {', '.join(sorted(summary.model.unique()))}. Runs: {len(summary)} (task × method × seed). "
        f"Commit: {commits}" + (" (dirty tree)" if summary.git_dirty.any() else "") + "."
    )
    files = sorted(str(p.relative_to(reports_dir)) for k, p in out.items() if p.suffix in (".csv", ".tex"))
    sections.append(
        Section(
            "Files",
            ["Tables as CSV (numbers) and LaTeX (booktabs) for papers, beside this report: " + ", ".join(files) + "."],
        )
    )
    io.write_text(out["md"], _markdown(head, sections, Path(reports_dir)))
    io.write_text(out["html"], _html(head, sections))
    remove_stale(reports_dir, out)
    return out


GENERATED = ("tables", "figures")  # reports/ subfolders only the report writes: every file there is one of its own


def remove_stale(reports_dir, written):
    """The files an earlier report left in reports/tables and reports/figures that this one did not write (a
    search profile's tuning.csv after a default run): beside today's tables, they read as this run's."""
    keep = {Path(p).resolve() for p in written.values()}
    for sub in GENERATED:
        folder = Path(reports_dir) / sub
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            if path.is_file() and path.suffix in (".csv", ".tex", ".png") and path.resolve() not in keep:
                path.unlink()


# ---- rendering: the same sections as Markdown and as one self-contained HTML page ---------------
def _markdown(head, sections, reports_dir):
    md = ["# peftbench report", "", head, "", INTRO, ""]
    for s in sections:
        md += [f"## {s.title}", ""] + [x for t in s.text for x in (t, "")]
        for item in s.items:
            if isinstance(item, Table):
                md += [f"*{item.title}*", "", tables.markdown(item.df), ""]
            elif isinstance(item, Figure):
                md += [f"![{item.title}]({item.path.relative_to(reports_dir).as_posix()})", "", f"*{item.caption}*", ""]
            elif isinstance(item, Html):
                md += [item.md, ""]
            else:
                md += [item, ""]
    return "\n".join(md)


STYLE = """
body{font-family:system-ui,-apple-system,sans-serif;max-width:90em;margin:2em auto;padding:0 1.2em;color:#222;line-height:1.45}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #e4e4e4;padding-bottom:.2em;margin-top:2.2em}
nav a{margin-right:1em} .intro{color:#555;font-size:.92em}
.scroll{overflow:auto;max-height:85vh;margin:.6em 0 1.4em} table{border-collapse:collapse;font-size:.86em}
caption{caption-side:top;text-align:left;font-style:italic;padding:.3em 0;color:#444}
th,td{padding:.28em .7em;border-bottom:1px solid #e2e2e2;text-align:right;white-space:nowrap}
th{background:#f3f5f8;position:sticky;top:0;z-index:2;white-space:normal} tr:nth-child(even) td{background:#fafbfc}
td:first-child,th:first-child{text-align:left;font-weight:600;position:sticky;left:0}
td:first-child{background:#fff;z-index:1} th:first-child{z-index:3}
table.prose td,table.prose th{white-space:normal;text-align:left;vertical-align:top;min-width:6em;max-width:28em}
.figs{display:flex;flex-wrap:wrap;gap:1.5em} figure{margin:0;flex:1 1 34em;max-width:48em}
figure img{width:100%;height:auto;border:1px solid #eee} figcaption{font-size:.86em;color:#555}
"""


def _img(path):
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f"data:image/{Path(path).suffix[1:].replace('svg', 'svg+xml')};base64,{data}"


def _drawn_title(path):
    """The titles drawn in the figure (saved in the PNG by figures._save): the image's hover text."""
    return figures.png_text(path).get("Title", "")


def _html_table(table):
    """Numbers: a plain table. Prose: cells wrap, and a long text cell gets room to be read."""
    if not table.prose:
        t = table.df.to_html(index=False, escape=True, border=0)
        return t.replace("<thead>", f"<caption>{html.escape(table.title)}</caption><thead>", 1)
    wide = lambda v: "min-width:22em" if isinstance(v, str) and len(v) > 60 else ""
    return (
        table.df.style.hide(axis="index")
        .format(escape="html")
        .format_index(escape="html", axis=1)
        .map(wide)
        .set_caption(html.escape(table.title))
        .set_table_attributes('class="prose"')
        .to_html()
    )


def _html(head, sections):
    e = html.escape
    nav = " ".join(f"<a href='#s{i}'>{e(s.title)}</a>" for i, s in enumerate(sections))
    body = []
    for i, s in enumerate(sections):
        body.append(f"<section id='s{i}'><h2>{e(s.title)}</h2>" + "".join(f"<p>{e(t)}</p>" for t in s.text))
        figs = [
            f"<figure><img src='{_img(f.path)}' alt='{e(f.title)}' title='{e(_drawn_title(f.path))}'>"
            f"<figcaption><b>{e(f.title)}.</b> "
            f"{e(f.caption)}</figcaption></figure>"
            for f in s.items
            if isinstance(f, Figure)
        ]
        for item in s.items:
            if isinstance(item, Table):
                body.append(f"<div class='scroll'>{_html_table(item)}</div>")
            elif isinstance(item, Html):
                body.append(item.html)
            elif isinstance(item, str):
                body.append(f"<p>{e(item)}</p>")
        if figs:
            body.append("<div class='figs'>" + "".join(figs) + "</div>")
        body.append("</section>")
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>peftbench report</title>"
        f"<meta name='viewport' content='width=device-width,initial-scale=1'><style>{STYLE}</style></head><body>"
        f"<h1>peftbench report</h1><p>{e(head)}</p><p class='intro'>{e(INTRO)}</p><nav>{nav}</nav>"
        + "".join(body)
        + f"<script>{TABLES_JS}</script><script>{EXPLORE_JS}</script></body></html>\n"
    )


# ---- entry points ---------------------------------------------------------------------------------
def render(
    summary_csv,
    train_jsons,
    reports_dir,
    tasks,
    expected=None,
    costs=None,
    tasks_dir=config.TASKS,
    checks=(),
    seed_independent=(),
):
    """The Snakemake rule: summary.csv and the runs' train.json files -> reports/. seed_independent: the
    profile's methods whose result cannot depend on the seed (`seed_independent_methods`)."""
    summary = pd.read_csv(summary_csv)
    specs = {t: config.load_task(t, tasks_dir) for t in tasks}
    train_jsons = list(train_jsons)
    _, bad = aggregate.read_runs(Path(p).parent for p in train_jsons)  # corrupt or inconsistent: listed, not read
    missing = [f"{_run_name(d)}: {reason}" for d, reason in bad]
    listed = {Path(d).parts[-3:-1] for d, _ in bad}
    missing += [
        f"{t} / {m}: no complete result"
        for t, m in sorted(set(expected or ()) - set(zip(summary.task, summary.method)) - listed)
    ]
    train_jsons = [p for p in train_jsons if Path(p).parent not in dict(bad)]
    return build(
        summary,
        loss_curves(train_jsons),
        reports_dir,
        specs,
        missing,
        costs,
        _made_by(train_jsons),
        aggregate.cost_failures(costs or {}),
        _run_dirs(train_jsons),
        timing.jobs(Path(summary_csv).parent, summary.model.iloc[0] if len(summary) else ""),
        aggregate.data_warnings(checks),
        seed_independent,
    )


def _first_seed_runs(summary, run_dirs):
    """{(model, task, method): the train.json of its first seed}: the settings a paper row's setup is set against
    (the seeds of a method share them)."""
    out = {}
    for (model, task, method), runs in summary.groupby(["model", "task", "method"]):
        folder = run_dirs.get((task, method, int(runs.seed.min())))
        if folder is not None and (Path(folder) / "train.json").exists():
            out[(model, task, method)] = io.read_json(Path(folder) / "train.json")
    return out


def _run_dirs(train_jsons):
    """{(task, method, seed): run folder} from each run's train.json."""
    out = {}
    for p in train_jsons:
        tr = io.read_json(p)
        out[(tr["task"], tr["method"], tr["seed"])] = Path(p).parent
    return out


def _run_name(run_dir):
    return " / ".join(Path(run_dir).parts[-3:])


def _made_by(train_jsons):
    return provenance.describe([io.read_json(p).get("provenance") or {} for p in train_jsons])


def default_costs(results_dir):
    """The cost measurements' CSVs that exist under results/costs/, titled."""
    d = Path(results_dir) / "costs"
    return {COST_TITLES.get(p.name, p.stem.replace("_", " ")): p for p in sorted(d.glob("*.csv"))}


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m peftbench.report",
        description=(
            "Regenerate reports/ from the runs already in results/: reads each complete run's JSON files, "
            "writes only under the reports folder; never trains or evaluates."
        ),
    )
    ap.add_argument(
        "--configfile",
        action="append",
        default=[],
        help="profile(s) overlaid on config/config.yaml, as with snakemake (e.g. config/smoke.yaml)",
    )
    ap.add_argument("--reports", help="write here instead of the profile's reports folder")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    project = Path.cwd() if (Path.cwd() / "Snakefile").is_file() else ROOT  # a copy of the workflow, or this one
    where = " + ".join(["config/config.yaml", *args.configfile])
    try:  # the DAG's checks: a sentence, and nothing written outside the project
        cfg = config.load_profile(project / "config/config.yaml", *args.configfile)
        for field, value in (
            (f"{where}: field 'results'", cfg["results"]),
            (f"{where}: field 'reports'", cfg["reports"]),
            ("option --reports", args.reports),
        ):
            if value is not None:
                preflight.inside_project(value, field)
    except config.ConfigError as e:
        sys.exit(str(e))
    method_specs = config.profile_methods(cfg, project / "methods")
    methods = config.selected_methods(cfg, method_specs)
    tasks = config.selected_tasks(cfg)
    base = Path(cfg["results"]) / cfg["model"]["name"]
    runs = [
        base / t / m / f"seed{s}" for t in tasks for m in methods for s in config.run_seeds(cfg, m, method_specs[m])
    ]
    stale = stale_runs(cfg, method_specs, runs, project / "tasks")  # trained under another profile: refused by name
    rows, bad = aggregate.read_runs([r for r in runs if r not in stale])  # a truncated or inconsistent run is listed
    bad += list(stale.items())
    complete = [r for r in runs if r not in dict(bad)]
    if not complete:
        sys.exit(
            f"no complete run under {base}/<task>/<method>/seed<s>/ (each needs {', '.join(aggregate.RUN_FILES)}, "
            f"consistent): run the benchmark first"
        )
    summary = pd.DataFrame(rows)
    specs = {t: config.load_task(t, project / "tasks") for t in tasks}
    missing = [f"{_run_name(r)}: {reason}" for r, reason in bad]
    trains = [r / "train.json" for r in complete]
    costs = default_costs(cfg["results"])
    out = build(
        summary,
        loss_curves(trains),
        args.reports or cfg["reports"],
        specs,
        missing,
        costs,
        _made_by(trains),
        aggregate.cost_failures(costs, cfg["costs"], Path(cfg["results"]) / "logs"),
        _run_dirs(trains),
        timing.jobs(cfg["results"], cfg["model"]["name"]),
        aggregate.data_warnings(Path(cfg["results"]) / "data" / t / "checks.json" for t in tasks),
        seed_independent_methods(cfg, method_specs, methods),
    )
    print(
        f"{len(complete)}/{len(runs)} runs -> {out['md']}, {out['html']} and {len(out) - 2} tables and figures "
        f"in {time.perf_counter() - start:.1f} s"
    )
