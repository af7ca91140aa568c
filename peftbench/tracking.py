"""Opt-in experiment tracking: a finished profile's runs logged to MLflow, where users already compare runs.

One switch in the profile (`tracking: {mlflow: <tracking URI>}`; off by default) adds the DAG's `track` job, which
runs after the report and logs, from the files the report was built from (nothing is recomputed):

    experiment `tracking.experiment`
      run "<task>/<method>"              the method on the task, per metric m of the task: its seed mean (metric
                                          "m"), its 95% interval over test examples and seeds ("m_ci_low",
                                          "m_ci_high", "m_se_seed", ...: reports/.../tables/intervals.csv), the
                                          differences against full fine-tuning and zero-shot, verdicts as tags
        run "<task>/<method>/seed<s>"    one training run (a nested run): its hyperparameters and training
                                          settings (train.json), the loss at every step, its scores and costs
                                          (summary.csv: trainable parameters, storage, latency, forgetting, time)

Post hoc, not live: the DAG's jobs stay free of a tracker's side effects (a job that logs and is then killed
would leave a half-run behind), and a rerun replaces a key's runs instead of adding duplicates (each run is
tagged `peftbench.key`). Written by hand because no library maps a results folder to a tracker; MLflow's own
client does the logging (mlflow-skinny, requirements-tracking.txt). A local store: `sqlite:///results/mlflow.db`
(MLflow 3 refuses a plain folder store); view it with `mlflow ui --backend-store-uri sqlite:///results/mlflow.db`.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pandas as pd

from peftbench import io

KEY_TAG = "peftbench.key"
INSTALL = "pip install -r requirements-tracking.txt"  # mlflow-skinny and the SQL store's libraries, pinned
# summary.csv columns logged as one seed's metrics (the score_* columns too), beside its loss curve
RUN_METRICS = (
    "main_score",
    "trainable_params",
    "trainable_percent",
    "storage_bytes",
    "latency_ms_per_token",
    "train_wall_s",
    "eval_wall_s",
    "tokens_per_s",
    "train_flops",
    "peak_memory_bytes",
    "final_train_loss",
    "forgetting_loss",
    "forgetting_delta",
)
# intervals.csv columns logged as the (task, method) run's metrics, per metric of the task ("<metric>" the seed
# mean, "<metric>_ci_low" ...): the seed mean, its interval and what it rests on
MEAN_METRICS = ("score", "ci_low", "ci_high", "se", "se_test", "se_seed", "seed_share", "seed_std", "seeds", "n_test")


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("mlflow") is not None


def _client(uri: str):
    if not available():
        raise RuntimeError(f"profile key tracking.mlflow is {uri!r} but MLflow is not installed: {INSTALL}")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _numbers(row: pd.Series, names) -> dict[str, float]:
    """The finite numbers among `names` of a row (MLflow refuses NaN where a cell is empty)."""
    out = {}
    for n in names:
        v = row.get(n)
        if pd.api.types.is_number(v) and math.isfinite(float(v)):
            out[n] = float(v)
    return out


def _params(train: dict) -> dict[str, str]:
    """One training run's settings as MLflow params (strings; nested values as JSON)."""
    flat = {f"hp.{k}": v for k, v in (train.get("hyperparameters") or {}).items()}
    flat |= {f"training.{k}": v for k, v in (train.get("training") or {}).items()}
    flat |= {k: train.get(k) for k in ("model", "task", "method", "seed", "precision", "device")}
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in flat.items()}


def _replace(client, experiment_id: str, key: str, name: str, parent: str | None = None):
    """A fresh run for `key`: the runs an earlier `track` job logged under it are deleted first."""
    for old in client.search_runs([experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{key}'"):
        client.delete_run(old.info.run_id)
    tags = {KEY_TAG: key, **({"mlflow.parentRunId": parent} if parent else {})}
    return client.create_run(experiment_id, run_name=name, tags=tags).info.run_id


def log_runs(
    uri: str, experiment: str, summary_csv: Path | str, intervals_csv: Path | str, results_dir: Path | str
) -> dict:
    """Log every row of summary.csv (one training run) and of intervals.csv (its method's seed mean) to the MLflow
    store at `uri`; returns what was logged: {experiment, uri, runs: {key: run id}}."""
    client = _client(uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    summary, intervals = pd.read_csv(summary_csv), pd.read_csv(intervals_csv)
    scores = [c for c in summary.columns if c.startswith("score_")]
    logged = {}
    diffs = [c for c in intervals.columns if c.startswith("diff_vs_") and not c.endswith("_verdict")]
    verdict_columns = [c for c in intervals.columns if c.endswith("_verdict")]
    for (task, method), means in intervals.groupby(["task", "method"], sort=False):
        rows = summary[(summary.task == task) & (summary.method == method)]
        if rows.empty:
            continue
        model = rows.iloc[0]["model"]
        key = f"{model}/{task}/{method}"
        parent = _replace(client, experiment_id, key, f"{task}/{method}")
        metrics, params, tags = {}, {"main_metric": rows.iloc[0].get("main_metric")}, {}
        for _, mean in means.iterrows():  # one row per metric of the task: its name prefixes what is logged
            m = mean["metric"]
            numbers = _numbers(mean, (*MEAN_METRICS, *diffs))
            metrics |= {m if k == "score" else f"{m}_{k}": v for k, v in numbers.items()}
            params[f"{m}_interval"] = mean.get("interval")
            tags |= {f"{m}_{c}": str(mean[c]) for c in verdict_columns if pd.notna(mean[c])}
        tags |= {"model": model, "task": task, "method": method}
        _log(client, parent, metrics=_metrics(metrics), params=_param_list(params), tags=_tag_list(tags))
        logged[key] = parent
        for _, row in rows.iterrows():
            run_dir = Path(results_dir) / model / task / method / f"seed{int(row['seed'])}"
            train = io.read_json(run_dir / "train.json")
            child_key = f"{key}/seed{int(row['seed'])}"
            child = _replace(client, experiment_id, child_key, f"{task}/{method}/seed{int(row['seed'])}", parent)
            losses = [(step, float(x)) for step, x in enumerate(train.get("loss_curve") or [])]
            metrics = _metrics(_numbers(row, (*RUN_METRICS, *scores))) + _curve("train_loss", losses)
            run_tags = {
                "run_dir": str(run_dir),
                "config_hash": row.get("config_hash"),
                "git_commit": row.get("git_commit"),
            }
            tags = _tag_list({k: v for k, v in run_tags.items() if pd.notna(v)})
            _log(client, child, metrics=metrics, params=_param_list(_params(train)), tags=tags)
            logged[child_key] = child
    return {"uri": uri, "experiment": experiment, "runs": logged}


def _log(client, run_id: str, metrics=(), params=(), tags=()) -> None:
    """Everything of one run in batches of MLflow's limits (1,000 metric values, 100 params or tags per call; a paper
    profile's loss curve has thousands of steps), then the run marked finished."""
    for kind, items, size in (
        ("metrics", list(metrics), 1000),
        ("params", list(params), 100),
        ("tags", list(tags), 100),
    ):
        for k in range(0, len(items), size):
            client.log_batch(run_id, **{kind: items[k : k + size]})
    client.set_terminated(run_id)


def _metrics(values: dict[str, float]):
    from mlflow.entities import Metric

    return [Metric(k, v, _now(), 0) for k, v in values.items()]


def _curve(name: str, points: list[tuple[int, float]]):
    """A metric's history: one value per training step (MLflow's step axis)."""
    from mlflow.entities import Metric

    return [Metric(name, v, _now(), step) for step, v in points if math.isfinite(v)]


def _now() -> int:
    return int(time.time() * 1000)  # MLflow's timestamps: milliseconds


def _param_list(values: dict):
    from mlflow.entities import Param

    return [Param(k, str(v)) for k, v in values.items() if v is not None]


def _tag_list(values: dict):
    from mlflow.entities import RunTag

    return [RunTag(k, str(v)) for k, v in values.items()]
