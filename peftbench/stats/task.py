"""One task's statistics for the report: every method's scores with seed-aware intervals (test examples
and training seeds, peftbench.stats.bootstrap), the seed spread and stability, and the paired differences
against the reference methods (full fine-tuning, zero-shot)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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

    def contrast(self, weights: dict[str, float], metric: str | None = None) -> bootstrap.Estimate:
        return self.by_metric[metric or self.main_metric].contrast(weights)

    def fragile(self, weights: dict[str, float], decide, metric: str | None = None) -> int | None:
        """The seed whose leaving out changes the verdict decide(estimate), else None."""
        return self.by_metric[metric or self.main_metric].fragile(weights, decide)

    def stability(self, method: str, metric: str | None = None) -> bootstrap.Stability:
        return self.by_metric[metric or self.main_metric].stability(method)

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
                e, s, st = ts.score(m), ts.seeds(m), ts.stability(m)
                row = {
                    "task": self.task,
                    "method": m,
                    "metric": metric,
                    "n_test": self.n,
                    "score": e.value,
                    "ci_low": e.low,
                    "ci_high": e.high,
                    "interval": e.interval,
                    "se": e.se,
                    "se_test": e.se_test,
                    "se_seed": e.se_seed,
                    "seed_share": e.seed_share,
                    "df": e.df,
                    "seeds": s.n,
                    "seed_independent": m in ts.independent,
                    "provisional": e.provisional,
                    "seed_std": s.std,
                    "seed_ci_low": s.low,
                    "seed_ci_high": s.high,
                    "seed_min": s.min,
                    "seed_max": s.max,
                    "run_se": st.run_se,
                    "unstable": st.unstable,
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
                                f"diff_vs_{ref}_seed_share": d.seed_share,
                                f"diff_vs_{ref}_df": d.df,
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
    seed_independent: Sequence[str] = (),
    group: Callable[[str], str] | None = None,
) -> TaskAnalysis:
    """runs: {(method, seed): run folder with samples.jsonl} of one task -> TaskAnalysis. A run whose
    samples.jsonl lacks per-example metrics, or was scored on other test examples, is left out of the
    statistics with a note (its score stays in the table, without an interval). seed_independent: the
    methods whose result cannot depend on the seed (peftbench.config.seed_dependent is False: seed
    variance 0); any other method with one seed has unknown seed variance (its verdicts are provisional).
    group: method -> the method it is a variant of (a tuned arm), see bootstrap.TaskStats."""
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
    per_method, seed_ids = {}, {}
    for (method, s), (run_ids, stats) in loaded.items():
        if run_ids != ids:
            out.notes.append(
                f"{task} / {method} / seed{s}: scored on other test examples ({len(run_ids)} vs "
                f"{len(ids)}): not compared"
            )
            continue
        per_method.setdefault(method, []).append(stats)
        seed_ids.setdefault(method, []).append(s)
    out.n = len(ids)
    for metric in aggregation_of:
        runs_m = {
            m: [st[metric] for st in seeds] for m, seeds in per_method.items() if all(metric in st for st in seeds)
        }
        if runs_m:
            out.by_metric[metric] = bootstrap.TaskStats(
                runs_m, len(ids), resamples, seed, seed_independent, seed_ids, group
            )
    return out
