"""One task's statistics for the report: every method's scores with intervals, the seed spread, and
the paired differences against the reference methods (full fine-tuning, zero-shot)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from peftbench.stats import bootstrap, scores

REFERENCES = ("full", "zero-shot")


@dataclass
class TaskAnalysis:
    task: str
    main_metric: str
    n: int = 0
    by_metric: dict = field(default_factory=dict)  # metric -> bootstrap.TaskStats
    notes: list = field(default_factory=list)  # runs left out of the statistics, and why

    def has(self, method: str, metric: str | None = None) -> bool:
        ts = self.by_metric.get(metric or self.main_metric)
        return ts is not None and method in ts.point

    def score(self, method: str, metric: str | None = None) -> bootstrap.Estimate:
        return self.by_metric[metric or self.main_metric].score(method)

    def difference(self, method: str, reference: str, metric: str | None = None) -> bootstrap.Estimate:
        return self.by_metric[metric or self.main_metric].difference(method, reference)

    def detectable(self, reference: str) -> float | None:
        """Median over methods of the smallest difference to `reference` the test size can detect."""
        ts = self.by_metric.get(self.main_metric)
        if ts is None or reference not in ts.point:
            return None
        d = [ts.difference(m, reference).detectable for m in ts.point if m != reference]
        return float(pd.Series(d).median()) if d else None

    def frame(self) -> pd.DataFrame:
        """Numbers, one row per (method, metric): score, interval, se, seed spread, differences."""
        rows = []
        for metric, ts in self.by_metric.items():
            for m in ts.point:
                e, s = ts.score(m), ts.seeds(m)
                row = {
                    "task": self.task,
                    "method": m,
                    "metric": metric,
                    "n_test": self.n,
                    "score": e.value,
                    "ci_low": e.low,
                    "ci_high": e.high,
                    "se": e.se,
                    "seeds": s.n,
                    "seed_std": s.std,
                    "seed_ci_low": s.low,
                    "seed_ci_high": s.high,
                }
                for ref in REFERENCES:
                    if ref in ts.point and ref != m:
                        d = ts.difference(m, ref)
                        row.update(
                            {
                                f"diff_vs_{ref}": d.value,
                                f"diff_vs_{ref}_low": d.low,
                                f"diff_vs_{ref}_high": d.high,
                                f"diff_vs_{ref}_verdict": d.verdict(),
                                f"diff_vs_{ref}_detectable": d.detectable,
                            }
                        )
                rows.append(row)
        return pd.DataFrame(rows)


def analyse(
    task: str,
    task_dir: Path | str,
    main_metric: str,
    runs: dict[tuple[str, int], Path | str],
    resamples: int = bootstrap.RESAMPLES,
    seed: int = bootstrap.SEED,
) -> TaskAnalysis:
    """runs: {(method, seed): run folder with samples.jsonl} of one task -> TaskAnalysis. A run whose
    samples.jsonl lacks per-example metrics, or was scored on other test examples, is left out of the
    statistics with a note (its score stays in the table, without an interval)."""
    out = TaskAnalysis(task, main_metric)
    aggregation_of = scores.aggregations(task_dir)
    loaded = {}
    for (method, s), run in sorted(runs.items()):
        path = Path(run) / "samples.jsonl"
        got = scores.load_run(path, aggregation_of) if path.is_file() else None
        if got is None:
            out.notes.append(
                f"{task} / {method} / seed{s}: no per-example scores in {path.name} (rerun its evaluation)"
            )
            continue
        loaded[(method, s)] = got
    if not loaded:
        return out
    ids = max((ids for ids, _ in loaded.values()), key=lambda i: sum(1 for x, _ in loaded.values() if x == i))
    per_method = {}
    for (method, s), (run_ids, stats) in loaded.items():
        if run_ids != ids:
            out.notes.append(
                f"{task} / {method} / seed{s}: scored on other test examples ({len(run_ids)} vs "
                f"{len(ids)}): not compared"
            )
            continue
        per_method.setdefault(method, []).append(stats)
    out.n = len(ids)
    for metric in aggregation_of:
        runs_m = {
            m: [st[metric] for st in seeds] for m, seeds in per_method.items() if all(metric in st for st in seeds)
        }
        if runs_m:
            out.by_metric[metric] = bootstrap.TaskStats(runs_m, len(ids), resamples, seed)
    return out
