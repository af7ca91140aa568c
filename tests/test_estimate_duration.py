"""scripts/estimate_duration.py: a larger profile's duration from a finished run's job times (Snakemake's log)."""

import importlib.util
import json
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location(
    "estimate_duration", Path(__file__).parents[1] / "scripts/estimate_duration.py"
)
estimate_duration = importlib.util.module_from_spec(spec)
spec.loader.exec_module(estimate_duration)


def job(jobid, rule, wildcards, start, seconds):
    """One job as Snakemake logs it: a start stamp and block, then a stamp and 'Finished jobid'."""
    stamp = "[Wed Dec  2 05:{:02d}:{:02d} 2026]"
    return [
        stamp.format(*divmod(start, 60)),
        f"localrule {rule}:" if rule == "data" else f"rule {rule}:",
        f"    jobid: {jobid}",
        f"    wildcards: {wildcards}",
        stamp.format(*divmod(start + seconds, 60)),
        f"Finished jobid: {jobid} (Rule: {rule})",
    ]


def write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


@pytest.mark.parametrize("winner", [3, 1])
def test_the_search_scales_as_fine_tuning_and_evaluation_and_the_rest_once_per_run(tmp_path, winner):
    runs, run = tmp_path / "results/m", tmp_path / "results/m/qa/lora/seed0"
    write(run / "train.json", {"wall_time_s": 20.0})
    write(run / "tuning/lr_x3/train.json", {"wall_time_s": 20.0})
    write(run / "tuning/lr_x9/train.json", {"diverged": "loss is nan at step 2"})  # no loop time: all fixed
    write(run / "lm_eval.json", {"peftbench": {"wall_time_s": 40.0}})
    write(run / "tuned/lm_eval.json", {"peftbench": {"wall_time_s": 40.0}})
    write(run / "tuning.json", {"chosen_factor": winner})
    lora = "task=qa, method=lora, seed=0"
    lines = job(1, "data", "task=qa", 0, 5)
    lines += job(2, "finetune", lora, 5, 30) + job(3, "finetune_candidate", lora + ", factor=3", 35, 30)
    lines += job(4, "finetune_candidate", lora + ", factor=9", 65, 4)
    lines += job(5, "validation_loss", lora, 69, 3) + job(6, "validation_loss_candidate", lora + ", factor=3", 72, 3)
    lines += job(7, "evaluate", lora, 75, 50) + job(8, "evaluate_tuned", lora, 125, 50 if winner != 1 else 1)
    (tmp_path / "run.log").write_text("\n".join(lines) + "\n")

    now, later, other = estimate_duration.estimate(
        tmp_path / "run.log", runs, {"steps": [12, 48], "test": [64, 128], "seeds": [1, 3]}
    )
    assert other == 5  # the data job: no seed, taken as measured
    fine_tuning = 2 * (10 + 20 * 4) + 4  # fixed + loop x 4 steps' worth; the diverged candidate as it ran
    evaluation = (10 + 40 * 2) + ((10 + 40 * 2) if winner != 1 else 1)  # the paper default's copy: as it ran
    assert later == fine_tuning + 3 + 3 + evaluation  # validation losses once per run
    assert now == 30 + 30 + 4 + 3 + 3 + 50 + (50 if winner != 1 else 1)
