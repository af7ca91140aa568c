"""The claims of config/claims.yaml, each tested on this run's data at the margin stated there.

Verdict (per task, setting or method; Wellek 2010 for the non-inferiority form): *reproduced* when the
whole 95% interval lies on the claim's side of the margin, *contradicted* when it lies wholly on the
other side, *inconclusive at this budget* otherwise (with the smallest difference the test could have
detected); *not run* when the methods it needs are not in the results."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from peftbench import ROOT, config

if TYPE_CHECKING:
    from peftbench.stats.task import TaskAnalysis

CLAIMS_FILE = ROOT / "config" / "claims.yaml"
REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_RUN = "reproduced", "contradicted", "inconclusive at this budget", "not run"
REQUIRED = {
    "better": ("method", "than", "margin"),
    "not_worse": ("method", "than", "margin"),
    "storage_below": ("methods", "percent"),
    "latency_below": ("variant", "margin"),
    "latency_above": ("variant", "margin"),
}


@dataclass
class Check:
    claim: str
    where: str
    test: str
    estimate: str
    verdict: str


def load(path: Path | str = CLAIMS_FILE) -> list[dict]:
    """The claims, validated: a missing or mistyped field is an error naming the file, claim and field."""
    claims = config.load_yaml(path).get("claims")
    if not isinstance(claims, list):
        raise ValueError(f"{path}: field 'claims': expected a list of claims")
    seen = set()
    for i, c in enumerate(claims):
        name = c.get("id", f"#{i + 1}") if isinstance(c, dict) else f"#{i + 1}"
        if not isinstance(c, dict):
            raise ValueError(f"{path}: claim {name}: expected a mapping")
        for key in ("id", "claim", "source", "kind"):
            if not isinstance(c.get(key), str):
                raise ValueError(f"{path}: claim {name}: field '{key}' is missing or not a string")
        if c["kind"] not in REQUIRED:
            raise ValueError(f"{path}: claim {name}: field 'kind': {c['kind']!r} is not one of {sorted(REQUIRED)}")
        for key in REQUIRED[c["kind"]]:
            if key not in c:
                raise ValueError(f"{path}: claim {name}: field '{key}' is required for kind {c['kind']}")
        for key in ("margin", "percent", "max_trainable_percent"):
            if key in c and not isinstance(c[key], (int, float)):
                raise ValueError(f"{path}: claim {name}: field '{key}' must be a number")
        if name in seen:
            raise ValueError(f"{path}: claim {name}: field 'id' is used twice")
        seen.add(name)
    return claims


def _side(low, high, margin, above=True):
    """The verdict of an interval against a margin, the claim being `value > margin` (or < when not above)."""
    if not above:
        low, high, margin = -high, -low, -margin
    if low > margin:
        return REPRODUCED
    if high < margin:
        return CONTRADICTED
    return INCONCLUSIVE


def _fmt(e):
    return f"{e.value:+.2f} [{e.low:+.2f}, {e.high:+.2f}]"


def _paired(c, analyses, summary):
    method, than, margin = c["method"], c["than"], float(c["margin"])
    bound = margin if c["kind"] == "better" else -margin
    rows = []
    for task, a in analyses.items():
        metric = a.main_metric
        missing = [m for m in (method, than) if not a.has(m)]
        if missing:
            rows.append(Check(c["id"], task, "", "", f"{NOT_RUN}: no scored run of {' and '.join(missing)} on {task}"))
            continue
        d = a.difference(method, than)
        test = f"{metric}: {method} − {than} > {bound:+g} (paired bootstrap, n={a.n})"
        verdict = _side(d.low, d.high, bound)
        if verdict == INCONCLUSIVE:
            verdict += f" (detectable difference ≈ {d.detectable:.1f})"
        extra = []
        if ("max_trainable_percent" in c or c.get("fewer_params")) and summary is not None:
            runs = summary[summary.task == task].groupby("method")
            if "max_trainable_percent" in c:
                pct = float(runs.trainable_percent.first()[method])
                extra.append(
                    f"{method} trains {pct:.3g}% (< {c['max_trainable_percent']:g}%: "
                    f"{'yes' if pct < c['max_trainable_percent'] else 'no'})"
                )
                if pct >= c["max_trainable_percent"]:
                    verdict = CONTRADICTED
            if c.get("fewer_params"):
                p = runs.trainable_params.first()
                fewer = p[method] < p[than]
                extra.append(
                    f"{method} {int(p[method]):,} vs {than} {int(p[than]):,} trainable "
                    f"({'fewer' if fewer else 'not fewer'})"
                )
                if not fewer:
                    verdict = CONTRADICTED
        rows.append(Check(c["id"], task, test + ("; " + "; ".join(extra) if extra else ""), _fmt(d), verdict))
    return rows


def _storage(c, summary):
    rows = []
    full = summary[summary.method == "full"]
    full_bytes = float(full.storage_bytes.mean()) if len(full) else float(summary.base_params.iloc[0]) * 4
    for m in c["methods"]:
        runs = summary[summary.method == m]
        if not len(runs):
            rows.append(Check(c["id"], m, "", "", f"{NOT_RUN}: {m} has no run"))
            continue
        pct = 100 * float(runs.storage_bytes.max()) / full_bytes
        rows.append(
            Check(
                c["id"],
                m,
                f"stored bytes / one full checkpoint < {c['percent']:g}% (exact, largest task state)",
                f"{pct:.4g}%",
                REPRODUCED if pct < c["percent"] else CONTRADICTED,
            )
        )
    return rows


def _latency(c, latency_csv):
    if latency_csv is None or not Path(latency_csv).is_file():
        return [Check(c["id"], c["variant"], "", "", f"{NOT_RUN}: no latency_overhead.csv (profile key costs)")]
    df = pd.read_csv(latency_csv)
    if not {"measure", "variant", "overhead_ci_low"} <= set(df.columns):
        return [Check(c["id"], c["variant"], "", "", f"{NOT_RUN}: {Path(latency_csv).name} has no overhead intervals")]
    df = df[(df.measure == "forward") & (df.variant == c["variant"])]
    if not len(df):
        return [Check(c["id"], c["variant"], "", "", f"{NOT_RUN}: no forward rows with an interval for {c['variant']}")]
    above, margin = c["kind"] == "latency_above", float(c["margin"])
    rows = []
    for _, r in df.iterrows():
        test = f"overhead of {c['variant']} vs base {'>' if above else '<'} {margin:g}% ({int(r.repeats)} rounds, bootstrap)"
        rows.append(
            Check(
                c["id"],
                f"batch {int(r.batch)} × {int(r.seq_len)} tokens",
                test,
                f"{r.overhead_pct:+.1f}% [{r.overhead_ci_low:+.1f}, {r.overhead_ci_high:+.1f}]",
                _side(r.overhead_ci_low, r.overhead_ci_high, margin, above),
            )
        )
    return rows


def evaluate(
    claims: list[dict],
    analyses: dict[str, TaskAnalysis],
    summary: pd.DataFrame | None,
    latency_csv: Path | str | None = None,
) -> list[Check]:
    """[Check] for every claim: one per task (score claims), method (storage) or setting (latency)."""
    out = []
    for c in claims:
        if c["kind"] in ("better", "not_worse"):
            out += _paired(c, analyses, summary)
        elif c["kind"] == "storage_below":
            out += _storage(c, summary)
        else:
            out += _latency(c, latency_csv)
    return out


def overall(checks: list[Check]) -> str:
    """One verdict per claim: the common verdict, or how it splits ('reproduced on 2, inconclusive on 1')."""
    kinds = [c.verdict.split(" (")[0].split(":")[0] for c in checks]
    if len(set(kinds)) == 1:
        return kinds[0]
    return ", ".join(f"{k} on {kinds.count(k)}" for k in dict.fromkeys(kinds))
