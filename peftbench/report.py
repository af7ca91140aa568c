"""summary.csv -> reports/report.md and a self-contained reports/report.html.

Per task: method, the task's scores, trainable parameters (count and % of the base model), storage
(bytes of the stored task state on disk) and latency (median ms per generated token, batch 1).
Several seeds become mean ± std."""
import html
from pathlib import Path

import pandas as pd

from . import config, io


def _fmt_params(n):
    return f"{n / 1e6:,.2f}M" if n >= 1e5 else f"{int(n):,}"


def _fmt_bytes(b):
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if b >= size:
            return f"{b / size:,.1f} {unit}"
    return f"{int(b)} B"


def _mean_std(series, digits=2):
    if len(series) > 1:
        return f"{series.mean():.{digits}f} ± {series.std(ddof=1):.{digits}f}"
    return f"{series.iloc[0]:.{digits}f}"


def task_table(df, task):
    spec = config.load_task(task)
    rows = []
    for method, g in df[df.task == task].groupby("method", sort=False):
        r = {"method": method}
        for m in spec["metrics"]:
            r[m + (" (main)" if m == spec["main_metric"] else "")] = _mean_std(g[f"score_{m}"])
        r["trainable params"] = _fmt_params(g.trainable_params.iloc[0])
        r["% of base"] = f"{g.trainable_percent.iloc[0]:.4g}%"
        r["storage"] = _fmt_bytes(g.storage_bytes.iloc[0])
        r["latency ms/token"] = _mean_std(g.latency_ms_per_token, 1)
        r["seeds"] = len(g)
        rows.append((g[f"score_{spec['main_metric']}"].mean(), r))
    rows.sort(key=lambda x: -x[0])
    return spec, pd.DataFrame([r for _, r in rows])


def _md_table(df):
    head = "| " + " | ".join(df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in rec) + " |" for rec in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def render(summary_csv, out_md, out_html, expected=None):
    df = pd.read_csv(summary_csv)
    models = ", ".join(sorted(df.model.unique()))
    commit = df.git_commit.dropna().unique()
    md = [f"# peftbench report", "",
          f"Model: **{models}**. Runs: {len(df)} (model × task × method × seed). "
          f"Commit: {', '.join(str(c)[:10] for c in commit) or 'n/a'}"
          + (" (dirty tree)" if df.git_dirty.any() else "") + ".", "",
          "Scores from lm-eval on the task's test split; trainable parameters as % of the base model; "
          "storage = bytes of the stored task state (safetensors) on disk; latency = median ms per "
          "generated token, greedy, batch 1, same prompts for every method.", ""]
    body_html = []
    for task in sorted(df.task.unique()):
        spec, table = task_table(df, task)
        md += [f"## {task}", "", spec["description"] + f". Main metric: {spec['main_metric']}.", "",
               _md_table(table), ""]
        body_html.append(f"<h2>{html.escape(task)}</h2><p>{html.escape(spec['description'])}. "
                         f"Main metric: {html.escape(spec['main_metric'])}.</p>"
                         + table.to_html(index=False, escape=True, border=0))
    if expected:
        missing = sorted(set(expected) - set(zip(df.task, df.method)))
        if missing:
            md += ["## Missing runs", "", *[f"- {t} / {m}: no complete result" for t, m in missing], ""]
            body_html.append("<h2>Missing runs</h2><ul>" + "".join(
                f"<li>{html.escape(t)} / {html.escape(m)}: no complete result</li>" for t, m in missing) + "</ul>")
    io.write_text(out_md, "\n".join(md))
    style = ("body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}th,td{padding:.3em .8em;border-bottom:1px solid #ddd;"
             "text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}")
    intro = "".join(f"<p>{html.escape(x)}</p>" for x in md[2:5] if x)
    io.write_text(out_html, f"<!doctype html><html><head><meta charset='utf-8'><title>peftbench report</title>"
                            f"<style>{style}</style></head><body><h1>peftbench report</h1>{intro}"
                            + "".join(body_html) + "</body></html>\n")
    return Path(out_md)
