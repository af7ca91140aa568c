"""Intervals and paired comparisons on one task, from every run's per-example scores and every seed.

Two sources of error, kept apart (variance components; Bouthillier et al. 2021, Sec. 3):

- test examples: one seeded resampling of the task's n test examples (B replicates, drawn once per task)
  is applied to every method and seed, so a contrast between methods is computed replicate by replicate
  on the same examples (a paired bootstrap; Koehn 2004, Efron & Tibshirani 1993 Ch. 13). SE_test is the
  replicates' standard deviation of the contrast of seed means;
- training seeds: s_m, the standard deviation of method m's per-seed full-test scores, enters as
  w_m² s_m² / S_m for a contrast sum_m w_m mean_m. It is 0 by construction for a method whose result
  cannot depend on its seed (zero-shot: trains nothing, draws no demonstrations), and *unknown* for a
  trained method with one seed: such an estimate is *provisional* (its seed part is left out, and said).
  Runs of one method and its variants (its tuned arm) that share seed numbers are paired over seeds: the
  seed part is the variance of their per-seed contrast.

SE² = SE_test² + sum of the seed parts, with Welch-Satterthwaite degrees of freedom (n - 1 for the test
part, S_m - 1 for each seed part). The interval keeps the shape of the test-only bootstrap interval
(percentile for means; BCa for corpus metrics, where the percentile one under-covers at n = 64) and
widens its two half-widths by k = t_df SE / (t_{n-1} SE_test): exactly the test-only interval when the
seeds agree (k = 1), wider when they disagree."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import stats as sps

RESAMPLES = 2000
SEED = 0
LEVEL = 95
POWER = 0.8
DETECTABLE = 2.8  # (z_0.975 + z_0.8): 80% power at a two-sided 5% level, in standard errors, for large df


def counts(n: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """B x n matrix: how often each of n examples is drawn in each replicate (rows sum to n)."""
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, n, size=(resamples, n)) + n * np.arange(resamples)[:, None]
    return np.bincount(drawn.ravel(), minlength=resamples * n).reshape(resamples, n)


def _alpha(level):
    return 1 - level / 100


def percentile_interval(replicates: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    lo, hi = np.percentile(replicates, [100 * _alpha(level) / 2, 100 * (1 - _alpha(level) / 2)])
    return float(lo), float(hi)


def bca_interval(value: float, replicates: np.ndarray, jackknife: np.ndarray, level: float = LEVEL):
    """Efron's bias-corrected and accelerated interval: the percentile interval moved by the replicates'
    median bias (z0) and skewed by the jackknife's acceleration (a). Falls back to the percentile interval
    where z0 is undefined (every replicate on one side of the value)."""
    below = np.mean(replicates < value) + 0.5 * np.mean(replicates == value)
    if not 0 < below < 1:
        return percentile_interval(replicates, level)
    z0 = sps.norm.ppf(below)
    d = jackknife.mean() - jackknife
    denom = 6 * float((d**2).sum()) ** 1.5
    a = float((d**3).sum()) / denom if denom > 0 else 0.0
    z = sps.norm.ppf([_alpha(level) / 2, 1 - _alpha(level) / 2])
    q = sps.norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z)))
    lo, hi = np.percentile(replicates, 100 * q)
    return float(lo), float(hi)


def t_quantile(p: float, df: float) -> float:
    return float(sps.norm.ppf(p) if not np.isfinite(df) else sps.t.ppf(p, df))


@dataclass
class Estimate:
    """A score or a contrast of scores with its 95% interval, and where its error comes from.

    se: total standard error; se_test: of the test examples (bootstrap); se_seed: of training seeds; df:
    Welch-Satterthwaite degrees of freedom of se; seeds: fewest seeds of a seed-dependent method in it
    (0 when none depends on its seed); provisional: a trained method in it has one seed (unknown seed
    variance, left out); mc_error: the Monte Carlo standard error of the interval's ends (the bootstrap's
    own noise at B replicates)."""

    value: float
    low: float
    high: float
    se: float
    se_test: float = float("nan")
    se_seed: float = 0.0
    df: float = float("inf")
    seeds: int = 0
    provisional: bool = False
    interval: str = "percentile"
    mc_error: float = 0.0

    def __post_init__(self):
        if self.se_test != self.se_test:
            self.se_test = self.se

    @classmethod
    def of(cls, value: float, replicates: np.ndarray) -> Estimate:
        """Test examples (or texts) only: the percentile interval of the replicates."""
        return cls(float(value), *percentile_interval(replicates), float(np.std(replicates, ddof=1)))

    @property
    def seed_share(self) -> float:
        """The share of the variance that comes from training seeds (0 when none is known)."""
        return float(self.se_seed**2 / self.se**2) if self.se > 0 else 0.0

    @property
    def detectable(self) -> float:
        """The smallest true difference (from 0, or from a claim's margin) that this test decides with 80%
        power at the 5% level: (t_0.975 + t_0.8) x SE on the estimate's degrees of freedom."""
        return (t_quantile(1 - _alpha(LEVEL) / 2, self.df) + t_quantile(POWER, self.df)) * self.se

    def p_value(self, bound: float = 0.0) -> float:
        """Two-sided p of value = bound on t_df (normal theory, the same SE and df as the interval)."""
        if self.se <= 0:
            return 0.0 if self.value != bound else 1.0
        stat = abs(self.value - bound) / self.se
        return float(2 * (sps.norm.sf(stat) if not np.isfinite(self.df) else sps.t.sf(stat, self.df)))

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
    min: float = float("nan")
    max: float = float("nan")


def seed_spread(per_seed: Sequence[float]) -> SeedSpread:
    x = np.asarray(per_seed, float)
    if len(x) < 2:
        m = float(x.mean())
        return SeedSpread(len(x), m, float("nan"), float("nan"), float("nan"), m, m)
    std = float(x.std(ddof=1))
    half = t_quantile(0.5 + LEVEL / 200, len(x) - 1) * std / np.sqrt(len(x))
    m = float(x.mean())
    return SeedSpread(len(x), m, std, m - half, m + half, float(x.min()), float(x.max()))


@dataclass
class Stability:
    """Seeds against one run's test error: `unstable` when the seed SD exceeds one run's test SE (the
    seeds spread more than resampling the test set moves one run)."""

    seed_std: float
    run_se: float
    low: float
    high: float

    @property
    def unstable(self) -> bool:
        return self.seed_std == self.seed_std and self.seed_std > self.run_se


def _binary_top(stats) -> float | None:
    """For mean scores that are all 0 (or all at the top, 1 or 100) on every seed: the top value; else None."""
    values = [getattr(s, "values", None) for s in stats]
    if any(v is None for v in values):
        return None
    allv = np.concatenate(values)
    for top in (1.0, 100.0):
        if np.all(allv == 0) or np.all(allv == top):
            return top
    return None


def seed_aware(value, reps, test_interval, parts, n, seeds=0, provisional=False, level=LEVEL, kind="percentile"):
    """The Estimate of `value` whose test-example replicates are `reps` (test-only interval
    `test_interval`) and whose seed parts are [(s²/S, S)]: SE² = SE_test² + sum s²/S, Welch-Satterthwaite
    df (n - 1 for the test part, S - 1 for each seed part), the test interval's half-widths widened by
    k = t_df SE / (t_{n-1} SE_test)."""
    se_test = float(np.std(reps, ddof=1))
    var_seed = float(sum(v for v, _ in parts))
    se = float(np.sqrt(se_test**2 + var_seed))
    denom = se_test**4 / (n - 1) + sum(v**2 / (s - 1) for v, s in parts)
    df = se**4 / denom if denom > 0 else float("inf")
    lo, hi = test_interval
    p = 1 - _alpha(level) / 2
    if se_test > 0:
        k = t_quantile(p, df) * se / (t_quantile(p, n - 1) * se_test)
        lo, hi = value - k * max(value - lo, 0.0), value + k * max(hi - value, 0.0)
    else:  # every replicate equal (identical outputs): only the seeds vary
        k, half = 1.0, t_quantile(p, df) * se if se > 0 else 0.0
        lo, hi = value - half, value + half
    # Monte Carlo error of a percentile end: sqrt(q (1-q) / B) / the density there (normal approximation)
    q = _alpha(level) / 2
    mc = k * se_test * np.sqrt(q * (1 - q) / len(reps)) / sps.norm.pdf(sps.norm.ppf(q))
    return Estimate(
        float(value),
        float(lo),
        float(hi),
        se,
        se_test,
        float(np.sqrt(var_seed)),
        float(df),
        seeds,
        provisional,
        kind,
        float(mc),
    )


class TaskStats:
    """Every method's per-seed replicates on one task and metric, on one shared resampling.

    runs: {method: [statistic per seed]} (peftbench.stats.scores statistics on the same test examples);
    seed_ids: {method: [seed per statistic]} (default 0, 1, ...); seed_independent: methods whose result
    cannot depend on the seed (their seed variance is 0, not unknown); group: method -> the method it is a
    variant of (its tuned arm), so that a variant inherits seed-independence and is paired over seeds."""

    def __init__(
        self,
        runs: dict[str, list],
        n: int,
        resamples: int = RESAMPLES,
        seed: int = SEED,
        seed_independent: Sequence[str] = (),
        seed_ids: dict[str, list[int]] | None = None,
        group: Callable[[str], str] | None = None,
    ):
        # a statistic that rescores its texts per resample (scores.Aggregation) bounds their number: the first
        # ones of the same seeded resampling, for every method of this metric (the interval says how many)
        bound = min([resamples] + [getattr(s, "max_resamples", resamples) for v in runs.values() for s in v])
        self.n, self.counts = n, counts(n, resamples, seed)[:bound]
        self.resamples, self.bounded = len(self.counts), bound < resamples
        self.stats = runs
        self.group = group or (lambda m: m)
        self.independent = {m for m in runs if m in seed_independent or self.group(m) in seed_independent}
        self.seed_ids = {m: list((seed_ids or {}).get(m, range(len(v)))) for m, v in runs.items()}
        self.per_seed = {m: np.array([s.full() for s in v]) for m, v in runs.items()}
        self.point = {m: float(x.mean()) for m, x in self.per_seed.items()}
        self.seed_replicates = {m: np.stack([s.resampled(self.counts) for s in v]) for m, v in runs.items()}
        self.replicates = {m: r.mean(0) for m, r in self.seed_replicates.items()}
        # corpus metrics (BLEU, chrF, ...): BCa, the percentile interval under-covers them at n = 64
        self.corpus = any(not hasattr(s, "values") for v in runs.values() for s in v)

    @cached_property
    def _jackknife(self) -> dict[str, np.ndarray]:
        return {m: np.stack([s.jackknife() for s in v]) for m, v in self.stats.items()}

    def _kept(self, m, drop):
        ids = self.seed_ids[m]
        if drop is None or m in self.independent or len(ids) < 2 or drop not in ids:
            return np.ones(len(ids), bool)
        return np.array([i != drop for i in ids])

    def _seed_parts(self, terms):
        """[(variance of the seed mean's contrast part, s²/S, and its S)] and whether a part is unknown."""
        by_group = {}
        for m, w in terms.items():
            if m not in self.independent:
                by_group.setdefault(self.group(m), []).append((m, w))
        parts, unknown = [], False
        for members in by_group.values():
            ids = [self.seed_ids[m] for m, _ in members]
            if len(members) > 1 and all(i == ids[0] for i in ids):  # paired over seeds: their per-seed contrast
                series = [sum(w * self.per_seed[m] for m, w in members)]
            else:
                series = [w * self.per_seed[m] for m, w in members]
            for x in series:
                if len(x) < 2:
                    unknown = True
                else:
                    parts.append((float(np.var(x, ddof=1)) / len(x), len(x)))
        return parts, unknown

    def contrast(self, weights: dict[str, float], drop: int | None = None, level: float = LEVEL) -> Estimate:
        """sum_m w_m x mean_m, paired on the same resampled examples, with its seed-aware interval.

        drop: a seed number left out of every seed-dependent method that has it and another seed (the
        leave-one-seed-out check); the seed variances stay the full study's, divided by the seeds left."""
        terms = {m: float(w) for m, w in weights.items() if w}
        keep = {m: self._kept(m, drop) for m in terms}
        value = sum(w * self.per_seed[m][keep[m]].mean() for m, w in terms.items())
        reps = sum(w * self.seed_replicates[m][keep[m]].mean(0) for m, w in terms.items())
        parts, unknown = self._seed_parts(terms)
        if drop is not None:  # the full study's seed variances, over the seeds left
            parts = [(v * s / max(s - 1, 1), s) for v, s in parts]
        if self.corpus:
            jack = sum(w * self._jackknife[m][keep[m]].mean(0) for m, w in terms.items())
            lo, hi = bca_interval(value, reps, jack, level)
        else:
            lo, hi = percentile_interval(reps, level)
        seeds = [int(keep[m].sum()) for m in terms if m not in self.independent]
        kind = "BCa" if self.corpus else "percentile"
        return seed_aware(
            value,
            reps,
            (lo, hi),
            parts,
            self.n,
            min(seeds) if seeds else 0,
            unknown,
            level,
            f"{kind}, {self.resamples} resamples" if self.bounded else kind,
        )

    def score(self, method: str) -> Estimate:
        e = self.contrast({method: 1.0})
        top = _binary_top(self.stats[method])
        if top is not None and e.se_test == 0:  # 0/n (or n/n): the bootstrap says [0, 0]; Clopper-Pearson does not
            bound = top * (_alpha(LEVEL) / 2) ** (1 / self.n)
            e.low, e.high = (0.0, top - bound) if e.value == 0 else (bound, top)
            e.interval = "exact (Clopper-Pearson)"
        elif self._nonnegative(method):  # the seed widening is symmetric in SE: a score cannot go below 0
            e.low = max(e.low, 0.0)
        return e

    def _nonnegative(self, method: str) -> bool:
        """A score that cannot be negative: a mean of nonnegative per-example scores, a sacrebleu corpus
        score (BLEU, chrF: 0 to 100), or a statistic that says so (`nonnegative`: the E2E metrics). Another
        corpus aggregation is left as it is."""
        return all(
            (hasattr(s, "values") and bool((s.values >= 0).all()))
            or type(s).__name__ == "Sacrebleu"
            or getattr(s, "nonnegative", False)
            for s in self.stats[method]
        )

    def difference(self, method: str, reference: str) -> Estimate:
        """method - reference, paired on the same resampled examples."""
        return self.contrast({method: 1.0, reference: -1.0})

    def seeds(self, method: str) -> SeedSpread:
        return seed_spread(self.per_seed[method])

    def stability(self, method: str) -> Stability:
        s = self.seeds(method)
        run_se = float(np.mean(np.std(self.seed_replicates[method], axis=1, ddof=1)))
        std = 0.0 if method in self.independent else s.std
        return Stability(std, run_se, s.min, s.max)

    def fragile(self, weights: dict[str, float], decide: Callable[[Estimate], str]) -> int | None:
        """The first seed whose leaving out changes decide(estimate) (the verdict), else None."""
        full = decide(self.contrast(weights))
        ids = sorted(
            {i for m in weights if m not in self.independent and len(self.seed_ids[m]) > 1 for i in self.seed_ids[m]}
        )
        return next((i for i in ids if decide(self.contrast(weights, drop=i)) != full), None)
