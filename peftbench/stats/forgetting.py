"""The forgetting measure's statistics on one task: each run's per-text general-text losses against the base
model's, as a paired bootstrap over the sample's texts widened by the seed-to-seed variance (as every score,
peftbench.stats.bootstrap.seed_aware).

    delta_r = sum_i w_ri (loss_i - base_loss_i) / sum_i w_ri tokens_i

on replicate r (w_r: how often text i is drawn), the mean over a method's seeds on each replicate. Every run
of a task is resampled on the same replicates of the same texts, so a contrast of methods (lora's delta -
full's) is paired over texts, replicate by replicate, not two separate intervals. Seed parts: w_m^2 s_m^2 /
S_m per seed-dependent method (0 for one that cannot depend on its seed; unknown, and the estimate
provisional, for a trained method with one seed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from peftbench import io
from peftbench.stats import bootstrap


class ForgettingStats:
    """runs: {method: [(seed, loss_sum - base_loss_sum per text, tokens per text)]}, every run on the same n
    texts; seed_independent: methods (or, through `group`, their variants) whose delta has no seed variance."""

    def __init__(
        self,
        runs: dict[str, list[tuple[int, np.ndarray, np.ndarray]]],
        seed_independent: Sequence[str] = (),
        group: Callable[[str], str] | None = None,
    ):
        sizes = {len(diff) for v in runs.values() for _, diff, _ in v}
        if len(sizes) != 1:
            raise ValueError(f"forgetting: the runs of one task scored different samples of texts ({sorted(sizes)})")
        self.n = sizes.pop()
        group = group or (lambda m: m)
        self.independent = {m for m in runs if m in seed_independent or group(m) in seed_independent}
        self.seed_ids = {m: [s for s, _, _ in v] for m, v in runs.items()}
        w = bootstrap.counts(self.n)
        self.per_seed = {m: np.array([d.sum() / t.sum() for _, d, t in v]) for m, v in runs.items()}
        self.seed_replicates = {m: np.stack([(w @ d) / (w @ t) for _, d, t in v]) for m, v in runs.items()}

    def has(self, method: str) -> bool:
        return method in self.per_seed

    def _kept(self, m, drop):
        ids = self.seed_ids[m]
        if drop is None or m in self.independent or len(ids) < 2 or drop not in ids:
            return np.ones(len(ids), bool)
        return np.array([i != drop for i in ids])

    def contrast(self, weights: dict[str, float], drop: int | None = None) -> bootstrap.Estimate:
        """sum_m w_m delta_m (e.g. {lora: 1, full: -1}) paired over the same resampled texts, with its
        seed-aware interval; drop: a seed left out of every seed-dependent method that has it and another
        (the leave-one-seed-out check; the full study's seed variances over the seeds left)."""
        terms = {m: float(x) for m, x in weights.items() if x}
        keep = {m: self._kept(m, drop) for m in terms}
        value = sum(x * self.per_seed[m][keep[m]].mean() for m, x in terms.items())
        reps = sum(x * self.seed_replicates[m][keep[m]].mean(0) for m, x in terms.items())
        parts, unknown = [], False
        for m, x in terms.items():
            if m in self.independent:
                continue
            s = len(self.per_seed[m])
            if s < 2:
                unknown = True
                continue
            v = x**2 * float(np.var(self.per_seed[m], ddof=1)) / s
            parts.append((v * s / max(s - 1, 1) if drop is not None and not keep[m].all() else v, s))
        seeds = [int(keep[m].sum()) for m in terms if m not in self.independent]
        return bootstrap.seed_aware(
            float(value),
            reps,
            bootstrap.percentile_interval(reps),
            parts,
            self.n,
            min(seeds) if seeds else 0,
            unknown,
        )

    def fragile(self, weights: dict[str, float], decide: Callable[[bootstrap.Estimate], str]) -> int | None:
        """The first seed whose leaving out changes decide(estimate), else None."""
        full = decide(self.contrast(weights))
        ids = sorted(
            {i for m in weights if m not in self.independent and len(self.seed_ids[m]) > 1 for i in self.seed_ids[m]}
        )
        return next((i for i in ids if decide(self.contrast(weights, drop=i)) != full), None)


def per_task(
    run_dirs: dict, seed_independent: Sequence[str] = (), group: Callable[[str], str] | None = None
) -> dict[str, ForgettingStats]:
    """{task: ForgettingStats} from the runs' forgetting.json (run_dirs: {(task, method, seed): folder}); runs
    without per-text losses (older forgetting.json) are left out."""
    runs = {}
    for (task, method, seed), d in sorted(run_dirs.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        path = Path(d) / "forgetting.json"
        fg = io.read_json(path) if path.is_file() else {}
        per_text, base = fg.get("per_text"), fg.get("base_loss_sums")
        if per_text and base and len(base) == len(per_text["loss_sums"]):
            diff = np.asarray(per_text["loss_sums"], float) - np.asarray(base, float)
            runs.setdefault(task, {}).setdefault(method, []).append((seed, diff, np.asarray(per_text["tokens"], float)))
    out = {}
    for task, r in runs.items():  # one sample of texts per task: runs on another one (none expected) are left out
        sizes = [len(diff) for v in r.values() for _, diff, _ in v]
        n = max(set(sizes), key=sizes.count)
        kept = {m: [x for x in v if len(x[1]) == n] for m, v in r.items()}
        out[task] = ForgettingStats({m: v for m, v in kept.items() if v}, seed_independent, group)
    return out
