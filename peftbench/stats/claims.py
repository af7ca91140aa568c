"""The claims of config/claims.yaml, each tested on this run's data at the margin stated there.

Verdict (per task, setting or method; Wellek 2010 for the non-inferiority form): *reproduced* when the
whole 95% interval (test examples and training seeds, peftbench.stats.bootstrap) lies on the claim's side
of the margin, *contradicted* when it lies wholly on the other side, *inconclusive at this budget*
otherwise; *not run* when the methods it needs are not in the results. A decisive verdict must also
survive three checks, or it is inconclusive with the reason given:

- false discovery rate: the paired tests of all claims (score claims and forgetting claims, one per claim
  and task) are one family, Benjamini-Hochberg at q = 0.05 over their p-values (the t test of the same
  estimate, SE and df against the margin); learning-rate, storage and timing verdicts have no p;
- the bootstrap's own noise: an interval end within 2 Monte Carlo standard errors of the margin;
- (timing) the control: base vs base must lie within the claim's `control_margin`, and its spread is
  added to the variant's interval.

Flags beside a verdict: *provisional* (a trained method in it has one seed: its seed variance is unknown),
*fragile* (leaving one seed out changes the verdict)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from peftbench import config
from peftbench.paths import ROOT

if TYPE_CHECKING:
    from peftbench.stats.task import TaskAnalysis

CLAIMS_FILE = ROOT / "config" / "claims.yaml"
REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_RUN = "reproduced", "contradicted", "inconclusive at this budget", "not run"
FDR = 0.05  # Benjamini-Hochberg's q over the family of paired tests (scores and forgetting)
MC_GUARD = 2  # an interval end this many Monte Carlo standard errors from the margin decides nothing
CONTROL = "base (control)"  # peftbench.costs.latency_overhead.CONTROL (not imported here: that loads torch)
CONTROL_MARGIN = 5.0  # default: base vs base must lie within +-5% for a timing verdict
REQUIRED = {
    "better": ("method", "than"),
    "not_worse": ("method", "than"),
    "storage_below": ("methods", "percent"),
    "latency_below": ("variant", "margin"),
    "latency_above": ("variant", "margin"),
    "forgets_less": ("method", "than", "margin"),
    "lr_ratio": ("method", "than", "ratio"),
}
SCORED = ("better", "not_worse")
RATIO_SLACK = 0.01  # lr_ratio: the ends compared with 1% slack (the grid's factor 0.333 stands for 1/3)


@dataclass
class Check:
    claim: str
    where: str
    test: str
    estimate: str
    verdict: str
    flags: str = ""
    p_value: float = float("nan")
    power: str = ""


def _number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_margin(c, where):
    """margin: a number, or {task: number}; margin_relative: r in (0, 1), a share of `than`'s score."""
    has, rel = "margin" in c, "margin_relative" in c
    if c["kind"] in SCORED and has == rel:
        raise ValueError(f"{where}: field 'margin': give exactly one of 'margin' and 'margin_relative'")
    if has and not _number(c["margin"]):
        m = c["margin"]
        if c["kind"] not in SCORED or not isinstance(m, dict) or not m:
            raise ValueError(
                f"{where}: field 'margin' must be a number" + (" or {task: number}" if c["kind"] in SCORED else "")
            )
        for task, v in m.items():
            if not _number(v):
                raise ValueError(f"{where}: field 'margin.{task}' must be a number")
    if rel and c["kind"] not in SCORED:
        raise ValueError(f"{where}: field 'margin_relative': only kinds {' and '.join(SCORED)} take one")
    if rel and not (_number(c["margin_relative"]) and 0 <= c["margin_relative"] < 1):
        raise ValueError(f"{where}: field 'margin_relative' must be a number in [0, 1) (a share of than's score)")


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
        _check_margin(c, f"{path}: claim {name}")
        for key in ("percent", "max_trainable_percent", "control_margin"):
            if key in c and not _number(c[key]):
                raise ValueError(f"{path}: claim {name}: field '{key}' must be a number")
        if "same_params_within" in c and not (_number(c["same_params_within"]) and 0 <= c["same_params_within"] < 1):
            raise ValueError(
                f"{path}: claim {name}: field 'same_params_within' must be a number in [0, 1) (a share of than's "
                "trainable count; 0: exactly the same)"
            )
        if c["kind"] == "lr_ratio":
            r = c["ratio"]
            if not (isinstance(r, list) and len(r) == 2 and all(_number(x) and x > 0 for x in r) and r[0] < r[1]):
                raise ValueError(
                    f"{path}: claim {name}: field 'ratio' must be [low, high], two positive numbers with low < high"
                )
        if "runs_in" in c and not isinstance(c["runs_in"], str):
            raise ValueError(f"{path}: claim {name}: field 'runs_in' must be a string (the profile or overlay)")
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


def _fmt(e, digits=2):
    v, lo, hi = (f"{x:+.{digits}f}" for x in (e.value, e.low, e.high))
    return f"{v} [{lo}, {hi}] (seeds {100 * e.seed_share:.0f}% of the variance, df {e.df:.3g}, {e.interval})"


def _contrast(c, task):
    """(weights, bound, text) of a score claim on one task: method - than > bound, or for a relative
    margin the linear contrast method - (1 +- r) than > 0 (exact under the same machinery)."""
    method, than, better = c["method"], c["than"], c["kind"] == "better"
    if "margin_relative" in c:
        f = 1 + c["margin_relative"] if better else 1 - c["margin_relative"]
        return {method: 1.0, than: -f}, 0.0, f"{method} − {f:g} × {than} > 0"
    margin = c["margin"][task] if isinstance(c["margin"], dict) else c["margin"]
    bound = float(margin) if better else -float(margin)
    return {method: 1.0, than: -1.0}, bound, f"{method} − {than} > {bound:+g}"


def _not_run(c, why):
    """'not run: why', and where the claim's runs come from when claims.yaml says (runs_in)."""
    return f"{NOT_RUN}: {why}" + (f" (runs with --configfile {c['runs_in']})" if c.get("runs_in") else "")


def _decide(d, bound, above, fragile):
    """(verdict, flags) of an estimate against its margin: the interval's side, undecided when its end lies
    within MC_GUARD Monte Carlo errors of the margin, 'fragile' when leaving one seed out changes it
    (`fragile(decide)` -> that seed or None), 'provisional' when a trained method in it ran one seed."""
    verdict, flags = _side(d.low, d.high, bound, above), []
    if verdict != INCONCLUSIVE:
        end = d.low if (verdict == REPRODUCED) == above else d.high
        if abs(end - bound) < MC_GUARD * d.mc_error:
            verdict = (
                f"{INCONCLUSIVE} (the interval's end is within {MC_GUARD} Monte Carlo errors, ±{d.mc_error:.2g}, "
                "of the margin)"
            )
        else:
            seed = fragile(lambda e: _side(e.low, e.high, bound, above))
            if seed is not None:
                flags.append(f"fragile: leaving seed {seed} out changes the verdict")
    if d.provisional:
        flags.append("provisional: a trained method here has one seed (its seed variance is unknown)")
    return verdict, flags


def _paired(c, analyses, summary):
    method, than = c["method"], c["than"]
    rows = []
    for task, a in analyses.items():
        metric = a.main_metric
        missing = [m for m in (method, than) if not a.has(m)]
        if missing:
            rows.append(
                Check(c["id"], task, "", "", _not_run(c, f"no scored run of {' and '.join(missing)} on {task}"))
            )
            continue
        if isinstance(c.get("margin"), dict) and task not in c["margin"]:
            rows.append(Check(c["id"], task, "", "", f"{NOT_RUN}: claims.yaml states no margin for {task}"))
            continue
        weights, bound, statement = _contrast(c, task)
        d = a.contrast(weights)
        seeds = a.by_metric[metric].seed_ids
        test = f"{metric}: {statement} (paired bootstrap, n={a.n}; seeds {method} {len(seeds[method])}, {than} {len(seeds[than])})"
        verdict, flags = _decide(d, bound, True, lambda decide: a.fragile(weights, decide))
        extra = []
        if ("max_trainable_percent" in c or c.get("fewer_params") or "same_params_within" in c) and summary is not None:
            runs = summary[summary.task == task].groupby("method")
            if "max_trainable_percent" in c:
                pct = float(runs.trainable_percent.first()[method])
                extra.append(
                    f"{method} trains {pct:.3g}% (< {c['max_trainable_percent']:g}%: "
                    f"{'yes' if pct < c['max_trainable_percent'] else 'no'})"
                )
                if pct >= c["max_trainable_percent"]:
                    verdict = f"{CONTRADICTED} (exact: trains {pct:.3g}%)"
            p = runs.trainable_params.first()
            if c.get("fewer_params"):
                fewer = p[method] < p[than]
                extra.append(
                    f"{method} {int(p[method]):,} vs {than} {int(p[than]):,} trainable "
                    f"({'fewer' if fewer else 'not fewer'})"
                )
                if not fewer:
                    verdict = f"{CONTRADICTED} (exact: not fewer parameters)"
            if "same_params_within" in c:
                tol, apart = c["same_params_within"], abs(p[method] - p[than]) / p[than]
                same = apart <= tol
                extra.append(
                    f"{method} {int(p[method]):,} vs {than} {int(p[than]):,} trainable ({100 * apart:.2g}% apart, "
                    f"the same count within {100 * tol:g}%: {'yes' if same else 'no'})"
                )
                if not same:  # the premise fails: this is not the comparison the claim is about
                    verdict = (
                        f"{INCONCLUSIVE} (exact: the trainable counts are {100 * apart:.2g}% apart, not the same "
                        f"within {100 * tol:g}%: not the claim's comparison)"
                    )
        power = f"decided with 80% power when the true value is ≥ {d.detectable:.2f} from the margin"
        rows.append(
            Check(
                c["id"],
                task,
                test + ("; " + "; ".join(extra) if extra else ""),
                _fmt(d),
                verdict,
                "; ".join(flags),
                d.p_value(bound),
                power,
            )
        )
    return rows


def _learned(a, method, than):
    """Each method's target score on the task and which learned more: the forgetting comparison is not at
    equal target score, and this says how far from it."""
    metric = a.main_metric
    sm, st, d = a.score(method), a.score(than), a.difference(method, than)
    v = d.verdict()
    who = {"better": f"{method} learned more", "worse": f"{than} learned more"}.get(
        v, "neither learned detectably more"
    )
    return (
        f"target {metric}: {method} {sm.value:.2f} [{sm.low:.2f}, {sm.high:.2f}], {than} {st.value:.2f} "
        f"[{st.low:.2f}, {st.high:.2f}]; not at equal target score: {who} ({method} − {than} {d.value:+.2f} "
        f"[{d.low:+.2f}, {d.high:+.2f}])"
    )


def _forgetting(c, forgetting, analyses):
    """method's forgetting delta − than's < margin (nats per token of general text), per task: one contrast
    paired over the same general texts, seeds as every score (peftbench.stats.forgetting); beside it each
    method's target score, since the two did not learn equally."""
    method, than, margin = c["method"], c["than"], float(c["margin"])
    rows = []
    for task in dict.fromkeys([*analyses, *forgetting]):
        fs = forgetting.get(task)
        missing = [m for m in (method, than) if fs is None or not fs.has(m)]
        if missing:
            why = f"no forgetting.json with per-text losses for {' and '.join(missing)} on {task}"
            rows.append(Check(c["id"], task, "", "", _not_run(c, why)))
            continue
        weights = {method: 1.0, than: -1.0}
        d = fs.contrast(weights)
        verdict, flags = _decide(d, margin, False, lambda decide: fs.fragile(weights, decide))
        test = (
            f"forgetting (general-text loss − the base model's, nats/token): {method} − {than} < {margin:g} "
            f"(paired bootstrap over the same n={fs.n} texts; seeds {method} {len(fs.seed_ids[method])}, "
            f"{than} {len(fs.seed_ids[than])})"
        )
        a = analyses.get(task)
        if a is not None and a.has(method) and a.has(than):
            test += "; " + _learned(a, method, than)
        rows.append(
            Check(
                c["id"],
                task,
                test,
                _fmt(d, 4),
                verdict,
                "; ".join(flags),
                d.p_value(margin),
                f"decided with 80% power when the true value is ≥ {d.detectable:.4f} from the margin",
            )
        )
    return rows


def _winner(losses, factors):
    """Index of the lowest mean validation loss over the rows (seeds) given, per row of `losses` (..., S, F);
    a tie goes to the factor nearest 1, as peftbench.stages.tuning.choose; a diverged candidate (inf) loses."""
    mean = losses.mean(-2)
    near = np.abs(np.log(factors))
    best = mean.min(-1, keepdims=True)
    return np.where(mean == best, near, np.inf).argmin(-1)


def _lr_ratio(c, summary):
    """The ratio of the learning rates the search chose, method's / than's, per task, against [low, high].

    Winner: the lowest validation loss averaged over seeds, on the grid (each method's own rate x the
    factors). Uncertainty: what the search stores is one mean validation loss per candidate and seed (no
    per-example losses), so the interval is a bootstrap over each method's seeds (resample S seeds with
    replacement, choose again, take the ratio; B = bootstrap.RESAMPLES, seeded), the validation examples'
    own noise not in it. Inconclusive with one seed (no measured uncertainty) and when a winner lies at the
    grid's edge (the best rate may lie beyond the grid); not in the false-discovery-rate family (no p)."""
    from peftbench.stats import bootstrap

    method, than = c["method"], c["than"]
    lo, hi = (float(x) for x in c["ratio"])
    cols = (
        sorted(
            (k for k in summary if k.startswith("val_loss_lr_x")), key=lambda k: float(k.removeprefix("val_loss_lr_x"))
        )
        if summary is not None
        else []
    )
    if not cols or "tuned_lr_factor" not in summary or summary.tuned_lr_factor.isna().all():
        return [Check(c["id"], "every task", "", "", _not_run(c, "no learning-rate search ran"))]
    factors = np.array([float(k.removeprefix("val_loss_lr_x")) for k in cols])
    rows = []
    for task in sorted(summary.task.unique()):
        searched = summary[(summary.task == task) & summary.tuned_lr_factor.notna()]
        missing = [m for m in (method, than) if not (searched.method == m).any()]
        if missing:
            why = f"no finished learning-rate search of {' and '.join(missing)} on {task}"
            rows.append(Check(c["id"], task, "", "", _not_run(c, why)))
            continue
        grids, lrs, per_seed = {}, {}, {}
        for m in (method, than):
            g = searched[searched.method == m].sort_values("seed")
            grids[m] = np.nan_to_num(g[cols].to_numpy(float), nan=np.inf)  # a diverged candidate never wins
            lrs[m] = float(g.learning_rate.iloc[0])
            per_seed[m] = ", ".join(f"x{factors[_winner(x[None], factors)]:g}" for x in grids[m])
        win = {m: int(_winner(grids[m], factors)) for m in grids}
        rate = {m: lrs[m] * factors[win[m]] for m in grids}
        ratio = rate[method] / rate[than]
        rng = np.random.default_rng(bootstrap.SEED)
        reps = np.ones(bootstrap.RESAMPLES)
        for m, sign in ((method, 1), (than, -1)):
            x = grids[m]
            drawn = x[rng.integers(0, len(x), (bootstrap.RESAMPLES, len(x)))]  # B x S x F
            reps *= (lrs[m] * factors[_winner(drawn, factors)]) ** sign
        low = float(np.quantile(reps, 0.025, method="lower"))
        high = float(np.quantile(reps, 0.975, method="higher"))
        seeds = {m: len(grids[m]) for m in grids}
        edge = [m for m in grids if win[m] in (0, len(factors) - 1)]
        if edge:
            verdict = (
                f"{INCONCLUSIVE} (the best rate may lie beyond the grid: "
                + ", ".join(
                    f"{m}'s winner x{factors[win[m]]:g} is the grid's {'smallest' if win[m] == 0 else 'largest'} factor"
                    for m in edge
                )
                + ")"
            )
        elif min(seeds.values()) < 2:
            verdict = (
                f"{INCONCLUSIVE} (one seed: the search stores one mean validation loss per candidate, so with one seed "
                "its uncertainty is unknown)"
            )
        elif low >= lo * (1 - RATIO_SLACK) and high <= hi * (1 + RATIO_SLACK):
            verdict = REPRODUCED
        elif high < lo * (1 - RATIO_SLACK) or low > hi * (1 + RATIO_SLACK):
            verdict = CONTRADICTED
        else:
            verdict = INCONCLUSIVE
        grid_text = ", ".join(f"x{f:g}" for f in factors)
        test = (
            f"chosen lr {method} / chosen lr {than} in [{lo:g}, {hi:g}] (winner: lowest validation loss, mean over "
            f"seeds, on {method} {lrs[method]:g} and {than} {lrs[than]:g} each × ({grid_text}); interval: bootstrap over "
            f"each method's seeds, {method} {seeds[method]}, {than} {seeds[than]}: the search stores one mean "
            f"validation loss per candidate and seed, not per example, so the validation examples' noise is not in "
            f"it; each seed's own winner: {method} {per_seed[method]}, {than} {per_seed[than]})"
        )
        estimate = (
            f"{ratio:.3g} [{low:.3g}, {high:.3g}] ({method} {rate[method]:.3g} = x{factors[win[method]]:g}, "
            f"{than} {rate[than]:.3g} = x{factors[win[than]]:g}; percentile interval over {bootstrap.RESAMPLES} "
            "seed resamples)"
        )
        rows.append(Check(c["id"], task, test, estimate, verdict))
    return rows


def benjamini_hochberg(p_values, q: float = FDR) -> np.ndarray:
    """True where Benjamini-Hochberg (1995) rejects at false discovery rate q: every p at or below the
    largest p_(k) with p_(k) <= k q / m."""
    p = np.asarray(p_values, float)
    if not len(p):
        return np.zeros(0, bool)
    order = np.argsort(p)
    below = p[order] <= q * np.arange(1, len(p) + 1) / len(p)
    k = np.nonzero(below)[0].max() + 1 if below.any() else 0
    out = np.zeros(len(p), bool)
    out[order[:k]] = True
    return out


def control_fdr(checks: list[Check], q: float = FDR) -> list[Check]:
    """Over the family of paired tests, scores and forgetting (those with a p-value): a decisive verdict that
    Benjamini-Hochberg does not reject becomes inconclusive, with its p and the threshold it missed."""
    family = [c for c in checks if c.p_value == c.p_value]
    keep = benjamini_hochberg([c.p_value for c in family], q)
    for c, ok in zip(family, keep):
        if not ok and c.verdict in (REPRODUCED, CONTRADICTED):
            c.verdict = (
                f"{INCONCLUSIVE} (p = {c.p_value:.3g}: not significant after FDR control over {len(family)} tests)"
            )
    return checks


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


def _control_row(df, r):
    same = df[(df.variant == CONTROL) & (df.batch == r.batch) & (df.seq_len.astype(str) == str(r.seq_len))]
    return same.iloc[0] if len(same) else None


def _latency(c, latency_csv):
    """Forward-pass overhead against its control: the base model timed as another variant ("base (control)",
    its true overhead 0). A verdict is drawn only when the control's interval lies within +-control_margin %
    (else the machine's noise decides); the control's half-widths are added to the variant's in quadrature
    (the round-to-round spread the ratio did not cancel)."""
    if latency_csv is None or not Path(latency_csv).is_file():
        return [Check(c["id"], c["variant"], "", "", f"{NOT_RUN}: no latency_overhead.csv (profile key costs)")]
    df = pd.read_csv(latency_csv)
    if not {"measure", "variant", "overhead_ci_low"} <= set(df.columns):
        return [Check(c["id"], c["variant"], "", "", f"{NOT_RUN}: {Path(latency_csv).name} has no overhead intervals")]
    df = df[df.measure == "forward"]
    rows_v = df[df.variant == c["variant"]]
    if not len(rows_v):
        return [Check(c["id"], c["variant"], "", "", f"{NOT_RUN}: no forward rows with an interval for {c['variant']}")]
    above, margin = c["kind"] == "latency_above", float(c["margin"])
    cm = float(c.get("control_margin", CONTROL_MARGIN))
    rows = []
    for _, r in rows_v.iterrows():
        where = f"batch {int(r.batch)} × {int(r.seq_len)} tokens"
        test = (
            f"overhead of {c['variant']} vs base {'>' if above else '<'} {margin:g}% ({int(r.repeats)} rounds, "
            f"bootstrap; control within ±{cm:g}%)"
        )
        ctl = _control_row(df, r)
        if ctl is None:
            verdict = f"{INCONCLUSIVE} (no control row: the timing cannot be checked against base vs base)"
            low, high = r.overhead_ci_low, r.overhead_ci_high
        else:
            c_lo, c_hi, c_v = ctl.overhead_ci_low, ctl.overhead_ci_high, ctl.overhead_pct
            low = r.overhead_pct - np.hypot(r.overhead_pct - r.overhead_ci_low, c_v - c_lo)
            high = r.overhead_pct + np.hypot(r.overhead_ci_high - r.overhead_pct, c_hi - c_v)
            if c_lo < -cm or c_hi > cm:
                verdict = (
                    f"{INCONCLUSIVE} (control base vs base {c_v:+.1f}% [{c_lo:+.1f}, {c_hi:+.1f}] is not within "
                    f"±{cm:g}%: this machine's timing noise would decide)"
                )
            else:
                verdict = _side(low, high, margin, above)
        rows.append(
            Check(
                c["id"],
                where,
                test,
                f"{r.overhead_pct:+.1f}% [{low:+.1f}, {high:+.1f}] (control's spread added)",
                verdict,
            )
        )
    return rows


def evaluate(
    claims: list[dict],
    analyses: dict[str, TaskAnalysis],
    summary: pd.DataFrame | None,
    latency_csv: Path | str | None = None,
    run_dirs: dict | None = None,
    seed_independent=(),
) -> list[Check]:
    """[Check] for every claim: one per task (score, forgetting and learning-rate claims), method (storage) or
    setting (latency); the paired tests' verdicts (scores and forgetting) under false-discovery-rate control
    over their family (`control_fdr`). run_dirs: {(task, method, seed): run folder}, whose forgetting.json
    the forgetting claims read; seed_independent: methods with no seed variance (zero-shot)."""
    from peftbench.stats import forgetting as forgetting_stats

    out, forgetting = [], None
    for c in claims:
        if c["kind"] in SCORED:
            out += _paired(c, analyses, summary)
        elif c["kind"] == "forgets_less":
            if forgetting is None:
                forgetting = forgetting_stats.per_task(
                    run_dirs or {}, seed_independent, lambda m: m.removesuffix(" (tuned)")
                )
            out += _forgetting(c, forgetting, analyses)
        elif c["kind"] == "lr_ratio":
            out += _lr_ratio(c, summary)
        elif c["kind"] == "storage_below":
            out += _storage(c, summary)
        else:
            out += _latency(c, latency_csv)
    return control_fdr(out)


def family_size(checks: list[Check]) -> int:
    """How many tests the false discovery rate is controlled over (the paired tests: scores and forgetting)."""
    return sum(c.p_value == c.p_value for c in checks)


def overall_flags(checks: list[Check]) -> str:
    """The flags of a claim's tests, counted: 'provisional on 3, fragile on 1'."""
    kinds = [f.split(":")[0] for c in checks for f in c.flags.split("; ") if f]
    return ", ".join(f"{k} on {kinds.count(k)}" for k in dict.fromkeys(kinds))


def overall(checks: list[Check]) -> str:
    """One verdict per claim: the common verdict, or how it splits ('reproduced on 2, inconclusive on 1')."""
    kinds = [c.verdict.split(" (")[0].split(":")[0] for c in checks]
    if len(set(kinds)) == 1:
        return kinds[0]
    return ", ".join(f"{k} on {kinds.count(k)}" for k in dict.fromkeys(kinds))


def margin_text(c: dict) -> str:
    """The claim's margin (and exact conditions) in words, as stated in claims.yaml before any run."""
    kind, m, t = c["kind"], c.get("method"), c.get("than")
    if kind in SCORED:
        sign = ">" if kind == "better" else "> −"
        if "margin_relative" in c:
            f = 1 + c["margin_relative"] if kind == "better" else 1 - c["margin_relative"]
            out = f"{m} > {f:g} × {t}"
        elif isinstance(c["margin"], dict):
            out = f"{m} − {t} {sign}" + ", ".join(f" {v:g} ({k})" for k, v in c["margin"].items())
        else:
            out = f"{m} − {t} {sign} {c['margin']:g}".replace("> − 0", "> 0")
        out += " on every task"
        if "max_trainable_percent" in c:
            out += f"; {m} trains < {c['max_trainable_percent']:g}% of the base"
        if c.get("fewer_params"):
            out += f"; {m} trains fewer parameters than {t}"
        if "same_params_within" in c:
            out += f"; trainable counts equal within {100 * c['same_params_within']:g}%"
        return out
    if kind == "forgets_less":
        return f"forgetting {m} − forgetting {t} < {c['margin']:g} nats/token on every task"
    if kind == "lr_ratio":
        return f"chosen lr {m} / chosen lr {t} within [{c['ratio'][0]:g}, {c['ratio'][1]:g}] on every task"
    if kind == "storage_below":
        return f"< {c['percent']:g}% of a full checkpoint"
    op = "<" if kind == "latency_below" else ">"
    return f"overhead {op} {c['margin']:g}% (control within ±{c.get('control_margin', CONTROL_MARGIN):g}%)"
