"""Opt-in tracking (peftbench/tracking.py): what MLflow's own client reads back, and the refusal without MLflow.
The whole path (a smoke run, then the track job the profile switch adds) is tests/test_workflow.py's."""

import math

import pandas as pd
import pytest

from peftbench import io, preflight, tracking
from peftbench.config import ConfigError


def results(tmp_path):
    """A results folder as the DAG lays it out: summary.csv's rows, intervals.csv's, each run's train.json."""
    rows = [
        {
            "model": "m",
            "task": "qa",
            "method": "lora",
            "seed": s,
            "main_metric": "f1",
            "main_score": 40.0 + s,
            "score_f1": 40.0 + s,
            "trainable_params": 100,
            "latency_ms_per_token": float("nan"),
        }  # fmt: skip
        for s in (0, 1)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "summary.csv", index=False)
    pd.DataFrame(
        [
            {
                "task": "qa",
                "method": "lora",
                "metric": "f1",
                "score": 40.5,
                "ci_low": 30.0,
                "ci_high": 50.0,
                "interval": "BCa",
                "diff_vs_full": -1.0,
                "diff_vs_full_verdict": "no detectable difference",
            },
            {
                "task": "qa",
                "method": "lora",
                "metric": "exact_match",
                "score": 20.0,
                "ci_low": 10.0,
                "ci_high": 30.0,
                "interval": "percentile",
                "diff_vs_full": float("nan"),
                "diff_vs_full_verdict": float("nan"),
            },
        ]  # fmt: skip
    ).to_csv(tmp_path / "intervals.csv", index=False)
    for s in (0, 1):
        train = {"hyperparameters": {"r": 8}, "training": {"learning_rate": 1e-3}, "loss_curve": [3.0, 2.0 - s, 1.5]}
        io.write_json(tmp_path / f"m/qa/lora/seed{s}/train.json", {**train, "model": "m", "task": "qa", "seed": s})
    return tmp_path


def test_a_second_log_replaces_the_first_and_empty_cells_are_left_out(tmp_path):
    d = results(tmp_path)
    uri = f"sqlite:///{d}/mlflow.db"
    for _ in range(2):
        logged = tracking.log_runs(uri, "exp", d / "summary.csv", d / "intervals.csv", d)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    runs = {r.info.run_name: r for r in client.search_runs([client.get_experiment_by_name("exp").experiment_id])}
    assert set(runs) == {"qa/lora", "qa/lora/seed0", "qa/lora/seed1"} == {k.split("m/", 1)[1] for k in logged["runs"]}
    mean = runs["qa/lora"].data
    assert (mean.metrics["f1"], mean.metrics["f1_ci_low"], mean.metrics["exact_match_ci_high"]) == (40.5, 30.0, 30.0)
    assert "exact_match_diff_vs_full" not in mean.metrics and "exact_match_diff_vs_full_verdict" not in mean.tags
    assert mean.tags["f1_diff_vs_full_verdict"] == "no detectable difference"
    seed1 = runs["qa/lora/seed1"]
    assert "latency_ms_per_token" not in seed1.data.metrics and not any(map(math.isnan, seed1.data.metrics.values()))
    history = client.get_metric_history(seed1.info.run_id, "train_loss")
    assert [(m.step, m.value) for m in history] == [(0, 3.0), (1, 1.0), (2, 1.5)]
    assert (seed1.data.params["hp.r"], seed1.data.params["training.learning_rate"]) == ("8", "0.001")


def test_a_profile_asking_for_tracking_without_mlflow_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(tracking, "available", lambda: False)  # as in an environment set up without the extra
    with pytest.raises(
        ConfigError, match=r"config: field 'tracking.mlflow' is 'sqlite:///x.db' .* requirements-tracking"
    ):
        preflight.tracker({"tracking": {"mlflow": "sqlite:///x.db"}}, "config")
    preflight.tracker({"tracking": {"mlflow": None}}, "config")  # off: nothing to install
