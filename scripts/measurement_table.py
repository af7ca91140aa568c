"""A finished run's main table and verdicts as MEASUREMENTS.md quotes them, read from its report's tables (so a
number in the README is copied from a run, not retyped).

    python scripts/measurement_table.py reports                 # the default's reports/ folder
    python scripts/measurement_table.py reports/rerun --tasks qa summarization translation

Per method and task: the main metric's seed mean [95% interval over test examples and seeds] (per-seed range),
"unstable" where the seeds spread beyond one run's test interval (reports/tables/intervals.csv); then each claim
of reports/tables/claims.csv with its verdict, estimate and flags."""

import argparse
from pathlib import Path

import pandas as pd

from peftbench import config


def cell(row) -> str:
    text = f"{row.score:.1f} [{row.ci_low:.1f}, {row.ci_high:.1f}]"
    if row.seeds > 1:
        text += f" ({row.seed_min:.1f}-{row.seed_max:.1f})"
    return text + (" unstable" if str(row.unstable) == "True" else "")


def table(reports: Path, tasks: list[str]) -> str:
    intervals = pd.read_csv(reports / "tables" / "intervals.csv")
    main = {t: config.load_task(t)["main_metric"] for t in tasks}
    rows = intervals[[m == main.get(t) for t, m in zip(intervals.task, intervals.metric)]]
    wide = rows.pivot(index="method", columns="task", values="score")
    order = wide.rank(ascending=False).mean(axis=1).sort_values().index  # best mean rank over the tasks first
    head = "| method | " + " | ".join(f"{t} {main[t]}" for t in tasks) + " |"
    lines = [head, "|---" * (len(tasks) + 1) + "|"]
    for method in order:
        cells = []
        for t in tasks:
            found = rows[(rows.task == t) & (rows.method == method)]
            cells.append(cell(found.iloc[0]) if len(found) else "--")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdicts(reports: Path) -> str:
    claims = pd.read_csv(reports / "tables" / "claims.csv")
    out = []
    for r in claims.itertuples():
        flags = f"; {r.flags}" if isinstance(r.flags, str) and r.flags else ""
        out.append(f"- *{r.claim}* ({r.where}): **{r.verdict}**: {r.estimate}{flags}")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reports", type=Path)
    ap.add_argument("--tasks", nargs="+", default=["qa", "summarization", "translation"])
    args = ap.parse_args()
    print(table(args.reports, args.tasks))
    print()
    print(verdicts(args.reports))


if __name__ == "__main__":
    main()
