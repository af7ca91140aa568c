"""A run's per-example scores as a statistic of its test examples, recomputable on resamples.

lm-eval logs one value per example and metric (samples.jsonl, `metrics`): a number for metrics that
lm-eval aggregates by `mean`, and the item a corpus aggregation consumes otherwise ((reference,
hypothesis) for sacrebleu's BLEU and chrF; (hypothesis, references) for the E2E metrics). A resample is
given as counts: counts[b, i] = how often example i is drawn in replicate b (a B x n integer matrix), so a
statistic of a resample is a weighted sum for means and for sufficient statistics (sacrebleu's, the E2E
metrics') alike."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from functools import cache, cached_property
from pathlib import Path

import numpy as np
import yaml

from peftbench import config, io


class Mean:
    """F1, EM, ROUGE, accuracy: the mean of per-example scores."""

    def __init__(self, values: Sequence[float]):
        self.values = np.asarray(values, dtype=float)

    def full(self) -> float:
        return float(self.values.mean())

    def resampled(self, counts: np.ndarray) -> np.ndarray:
        return counts @ self.values / counts.sum(1)

    def jackknife(self) -> np.ndarray:
        """The statistic with each example left out in turn (BCa's acceleration)."""
        return (self.values.sum() - self.values) / (len(self.values) - 1)


@cache
def _sacrebleu_metric(name):
    import sacrebleu

    return {"bleu": sacrebleu.BLEU, "chrf": sacrebleu.CHRF}[name]()  # lm-eval's defaults: corpus_bleu/_chrf


class Sacrebleu:
    """BLEU / chrF as lm-eval aggregates them (sacrebleu.corpus_bleu / corpus_chrf with default settings),
    recomputed on a resample from the summed per-sentence sufficient statistics (n-gram matches and
    totals, lengths): exact, and cheap (Koehn 2004's paired bootstrap, as sacrebleu's own significance
    tests do it)."""

    def __init__(self, name: str, items: Sequence):
        self.metric = _sacrebleu_metric(name)
        # lm-eval's items are (reference or references, hypothesis); sacrebleu wants reference streams
        refs = [[r] if isinstance(r, str) else list(r) for r, _ in items]
        refs, hyps = [list(stream) for stream in zip(*refs)], [h for _, h in items]
        self.stats = np.asarray(self.metric._extract_corpus_statistics(hyps, refs), dtype=np.int64)

    def _score(self, summed):
        return self.metric._compute_score_from_stats([int(x) for x in summed]).score

    def full(self) -> float:
        return self._score(self.stats.sum(0))

    def resampled(self, counts: np.ndarray) -> np.ndarray:
        return np.array([self._score(s) for s in counts @ self.stats])

    def jackknife(self) -> np.ndarray:
        total = self.stats.sum(0)
        return np.array([self._score(total - row) for row in self.stats])


class Aggregation:
    """Any other corpus metric: the task's own aggregation function recomputed on the items of each
    resample. Correct for any metric, and as slow as it is, so bounded: at most MAX_RESAMPLES resamples
    (bootstrap.TaskStats takes the first ones of the shared resampling, and the interval says how many), and
    a jackknife over at most MAX_RESAMPLES groups of items (leave one group out: BCa's acceleration is the
    skewness of the influence values, which sums of items' influences keep). (An aggregation that knows a
    faster form gives it as its `bootstrap_statistic`: the E2E metrics, peftbench.scoring.e2e_metrics.)"""

    MAX_RESAMPLES = 200
    max_resamples = MAX_RESAMPLES

    def __init__(self, fn: Callable, items: Sequence):
        self.fn, self.items = fn, list(items)

    def full(self) -> float:
        return float(self.fn(self.items))

    def resampled(self, counts: np.ndarray) -> np.ndarray:
        return np.array([self.fn([self.items[i] for i in np.repeat(np.arange(len(c)), c)]) for c in counts])

    def jackknife(self) -> np.ndarray:
        groups = np.array_split(np.arange(len(self.items)), min(len(self.items), self.max_resamples))
        return np.array([self.fn([x for i, x in enumerate(self.items) if not g[0] <= i <= g[-1]]) for g in groups])


class _Function:
    """An lm-eval `!function module.name` tag, resolved next to its YAML only when called (lm-eval's own
    loader imports `datasets` and lm-eval's task machinery, seconds the report does not need to spend)."""

    def __init__(self, folder, ref):
        self.folder, self.ref = Path(folder), ref

    @cached_property
    def function(self):
        module, name = self.ref.rsplit(".", 1)
        spec = importlib.util.spec_from_file_location(
            f"_peftbench_{self.folder.name}_{module}", self.folder / f"{module}.py"
        )
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return getattr(mod, name)

    def __call__(self, *args):
        return self.function(*args)


def _read_task_yaml(path):
    """lm_eval.yaml as lm-eval reads it: `!function` tags (resolved next to the file that names them), and the
    YAMLs it `include:`s merged beneath it (peftbench.config.lm_eval_config)."""

    def load(p):
        loader = type("TaskLoader", (yaml.SafeLoader,), {})
        loader.add_constructor("!function", lambda ld, node: _Function(p.parent, ld.construct_scalar(node)))
        return yaml.load(p.read_text(), Loader=loader)

    return config.lm_eval_config(path, load)[0]


def aggregations(task_dir: Path | str) -> dict[str, str | Callable]:
    """{metric: aggregation} from the task's lm_eval.yaml: 'mean', 'bleu', 'chrf', or a callable."""
    cfg = _read_task_yaml(Path(task_dir) / "lm_eval.yaml")
    return {m["metric"]: m.get("aggregation", "mean") for m in cfg.get("metric_list", [])}


Statistic = Mean | Sacrebleu | Aggregation  # or an aggregation's bootstrap_statistic (e2e_metrics.Metric)


def statistic(aggregation: str | Callable, values: Sequence, name: str = "") -> Statistic:
    if aggregation == "mean":
        return Mean(values)
    if aggregation in ("bleu", "chrf"):
        return Sacrebleu(aggregation, values)
    if isinstance(aggregation, _Function) or callable(aggregation):
        items = [tuple(tuple(x) if isinstance(x, list) else x for x in v) for v in values]
        fn = aggregation.function if isinstance(aggregation, _Function) else aggregation
        # an aggregation's own resampling form (sufficient statistics), scoring a resample without its texts
        make = getattr(fn, "bootstrap_statistic", None)
        return make(items) if make is not None else Aggregation(aggregation, items)
    raise ValueError(f"metric {name!r}: no bootstrap for lm-eval aggregation {aggregation!r}")


def load_run(
    samples_path: Path | str, aggregation_of: dict[str, str | Callable]
) -> tuple[list[int], dict[str, Statistic]] | None:
    """samples.jsonl -> (doc_ids, {metric: statistic}); None when the file predates per-example metrics."""
    rows = sorted(io.read_jsonl(samples_path), key=lambda r: r["doc_id"])
    if not rows or "metrics" not in rows[0]:
        return None
    ids = [r["doc_id"] for r in rows]
    out = {}
    for metric, agg in aggregation_of.items():
        if all(metric in r["metrics"] for r in rows):
            out[metric] = statistic(agg, [r["metrics"][metric] for r in rows], metric)
    return ids, out
