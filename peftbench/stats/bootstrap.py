"""Intervals and paired comparisons on one task, from every run's per-example scores.

One seeded resampling of the task's n test examples (B replicates, drawn once per task) is applied to
every method: a difference between two methods is computed replicate by replicate on the same examples
(a paired bootstrap; Koehn 2004, Efron & Tibshirani 1993 Ch. 13), much tighter than two separate
intervals. Intervals are percentile intervals. With several seeds a method's score on a replicate is
the mean over its seeds on that replicate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
SEED = 0
LEVEL = 95
# 80% power at a two-sided 5% level: (z_0.975 + z_0.8) x SE = (1.96 + 0.84) x SE
DETECTABLE = 2.8


def counts(n: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """B x n matrix: how often each of n examples is drawn in each replicate (rows sum to n)."""
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, n, size=(resamples, n)) + n * np.arange(resamples)[:, None]
    return np.bincount(drawn.ravel(), minlength=resamples * n).reshape(resamples, n)


def percentile_interval(replicates: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    lo, hi = np.percentile(replicates, [(100 - level) / 2, 100 - (100 - level) / 2])
    return float(lo), float(hi)


@dataclass
class Estimate:
    """A score (or a difference) with its 95% interval and bootstrap standard error."""

    value: float
    low: float
    high: float
    se: float

    @classmethod
    def of(cls, value: float, replicates: np.ndarray) -> Estimate:
        return cls(float(value), *percentile_interval(replicates), float(np.std(replicates, ddof=1)))

    @property
    def detectable(self) -> float:
        """The smallest true difference this test size detects with 80% power at the 5% level."""
        return DETECTABLE * self.se

    def verdict(self, margin: float = 0.0) -> str:
        """For a difference: 'better' when the whole interval is above the margin, 'worse' when it is
        all below, else 'no detectable difference'."""
        if self.low > margin:
            return "better"
        if self.high < margin:
            return "worse"
        return "no detectable difference"


@dataclass
class SeedSpread:
    """The seed-to-seed spread of the full-test-set score: covers training randomness, not test sampling."""

    n: int
    mean: float
    std: float
    low: float
    high: float


def seed_spread(per_seed: Sequence[float]) -> SeedSpread:
    x = np.asarray(per_seed, float)
    if len(x) < 2:
        return SeedSpread(len(x), float(x.mean()), float("nan"), float("nan"), float("nan"))
    from scipy.stats import t

    std = float(x.std(ddof=1))
    half = float(t.ppf(0.5 + LEVEL / 200, len(x) - 1)) * std / np.sqrt(len(x))
    return SeedSpread(len(x), float(x.mean()), std, float(x.mean()) - half, float(x.mean()) + half)


class TaskStats:
    """Every method's replicates on one task and metric, on one shared resampling.

    runs: {method: [statistic per seed]} (peftbench.stats.scores statistics on the same test examples)."""

    def __init__(self, runs: dict[str, list], n: int, resamples: int = RESAMPLES, seed: int = SEED):
        self.n, self.counts = n, counts(n, resamples, seed)
        self.point = {m: float(np.mean([s.full() for s in stats])) for m, stats in runs.items()}
        self.per_seed = {m: [s.full() for s in stats] for m, stats in runs.items()}
        self.replicates = {m: np.mean([s.resampled(self.counts) for s in stats], axis=0) for m, stats in runs.items()}

    def score(self, method: str) -> Estimate:
        return Estimate.of(self.point[method], self.replicates[method])

    def seeds(self, method: str) -> SeedSpread:
        return seed_spread(self.per_seed[method])

    def difference(self, method: str, reference: str) -> Estimate:
        """method - reference, paired on the same resampled examples."""
        return Estimate.of(
            self.point[method] - self.point[reference], self.replicates[method] - self.replicates[reference]
        )
