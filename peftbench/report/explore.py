"""The report's interactive charts, offline inside report.html: each method's score (seed mean, with its interval over
examples and seeds) against a cost the reader picks, with the Pareto front for those two axes; and the training loss
per step, one task at a time, a log axis on request (scratch's loss of 8-11 no longer flattens the others). Hover
gives the numbers. The data goes into the page as JSON; report_explore.js draws SVG from it (written by hand: no
plotting library is embedded, so the one HTML file stays small and opens without a network)."""

import json
import math

import pandas as pd
from matplotlib.colors import to_hex

JS = "report_explore.js"
AXES = {  # summary.csv column -> axis label, and whether less is better (the Pareto front's direction)
    "trainable_params": ("trainable parameters", True),
    "storage_bytes": ("stored task state (bytes)", True),
    "latency_ms_per_token": ("latency (ms per generated token, batch 1)", True),
    "train_flops": ("training FLOPs", True),
    "forgetting_delta": ("forgetting: general-text loss increase (nats/token)", True),
}


def _number(v):
    """A JSON number, or null for a missing one (JSON has no NaN: the page never draws one)."""
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) or pd.isna(v) else float(v)


def payload(summary: pd.DataFrame, intervals: pd.DataFrame, curves: pd.DataFrame, colors: dict) -> dict:
    """{"axes", "colors" (the figures' own, as hex), "points": one per (task, method), "losses": the mean loss per
    step over seeds, per (task, method)}."""
    points = []
    for (task, method), runs in summary.groupby(["task", "method"], sort=False):
        metric = runs.main_metric.iloc[0]
        iv = intervals[(intervals.task == task) & (intervals.method == method) & (intervals.metric == metric)]
        score = iv.score.iloc[0] if len(iv) else runs.main_score.mean()
        points.append(
            {
                "task": task,
                "method": method,
                "metric": metric,
                "score": _number(score),
                "low": _number(iv.ci_low.iloc[0]) if len(iv) else None,
                "high": _number(iv.ci_high.iloc[0]) if len(iv) else None,
                "seeds": [_number(s) for s in runs.sort_values("seed").main_score],
                **{c: _number(runs[c].mean()) if c in runs else None for c in AXES},
            }
        )
    losses = [
        {"task": task, "method": method, "steps": g.step.tolist(), "loss": [_number(v) for v in g.loss]}
        for (task, method), g in curves.groupby(["task", "method", "step"], sort=False)
        .loss.mean()
        .reset_index()
        .groupby(["task", "method"], sort=False)
    ]
    axes = {c: {"label": label, "less_is_better": less} for c, (label, less) in AXES.items()}
    hexes = {m: to_hex(c) for m, c in colors.items()}
    return {"axes": axes, "colors": hexes, "points": points, "losses": losses}


def html(data: dict) -> str:
    """The two chart holders and their data; report_explore.js fills them on load."""
    text = json.dumps(data, allow_nan=False).replace("</", "<\\/")  # no "</script>" can end the block early
    return (
        "<div class='explore' data-chart='pareto'></div><div class='explore' data-chart='loss'></div>"
        f"<script type='application/json' id='explore-data'>{text}</script>"
    )
