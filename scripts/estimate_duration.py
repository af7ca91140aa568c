"""Expected duration of a larger profile, from a finished run's measured job times.

    python scripts/estimate_duration.py .snakemake/log/<run>.snakemake.log results/smollm2-135m-instruct \
        --steps 12:48 --test 32:200 --seeds 1:3 --parallel 2

Each fine-tuning job = fixed cost + steps x its measured step time (train.json); each evaluation job = fixed
cost + lm-eval's time scaled by the test size (generation batches: linear in the number of examples);
fixed cost = the job's wall time in Snakemake's log minus that useful part. The learning-rate search's jobs
(config/tuning.yaml) count the same way: its candidates as fine-tuning, its winner's evaluation as evaluation,
its validation-loss and selection jobs once per run. Jobs x seeds, divided by the
jobs run side by side, plus every other job as measured (base model, data, cost rules)."""

import argparse
import json
import re
from datetime import datetime
from pathlib import Path


def job_times(log):
    """{jobid: (rule, wildcards, seconds)} from Snakemake's log: '[time]' lines, 'rule X:' / 'jobid: N' /
    'wildcards: ...' blocks, and 'Finished jobid: N'."""
    started, out, stamp, rule, job = {}, {}, None, None, None
    for line in Path(log).read_text().splitlines():
        if m := re.match(r"^\[(\w{3} \w{3}\s+\d+ [\d:]+ \d{4})\]$", line.strip()):
            stamp = datetime.strptime(re.sub(r"\s+", " ", m.group(1)), "%a %b %d %H:%M:%S %Y")
        elif m := re.match(r"^(local)?rule (\w+):", line):
            rule = m.group(2)
        elif m := re.match(r"^\s+jobid: (\d+)", line):
            job = m.group(1)
            started[job] = (rule, "", stamp)
        elif (m := re.match(r"^\s+wildcards: (.*)", line)) and job in started:
            started[job] = (started[job][0], m.group(1), started[job][2])
        elif m := re.match(r"^Finished jobid: (\d+)", line.strip()):
            r, w, t0 = started[m.group(1)]
            out[m.group(1)] = (r, w, (stamp - t0).total_seconds())
    return out


def estimate(log, runs, ratio):
    """(measured, at the target before seeds, other) job-seconds. Per-run jobs scale by seeds: fine-tuning (the
    search's candidates too) also by steps, evaluation (the search's winner too) also by test size; a job that
    is neither (validation loss, selection) is per run but independent of steps and test size. Jobs without a
    seed (base model, data, cost rules) are taken as measured."""
    now = later = other = 0.0
    for rule, wildcards, seconds in job_times(log).values():
        wc = dict(kv.split("=") for kv in wildcards.split(", ") if "=" in kv)
        if "seed" not in wc:
            other += seconds
            continue
        run = Path(runs) / wc["task"] / wc["method"] / f"seed{wc['seed']}"
        if rule in ("finetune", "finetune_candidate"):
            folder = run / "tuning" / f"lr_x{wc['factor']}" if "factor" in wc else run
            loop = json.loads((folder / "train.json").read_text()).get("wall_time_s", 0.0)  # diverged: none
            later += (seconds - loop) + loop * ratio["steps"][1] / ratio["steps"][0]
        elif rule in ("evaluate", "evaluate_tuned"):
            copied = rule == "evaluate_tuned" and json.loads((run / "tuning.json").read_text())["chosen_factor"] == 1
            folder = run / "tuned" if rule == "evaluate_tuned" else run
            lm = 0.0 if copied else json.loads((folder / "lm_eval.json").read_text())["peftbench"]["wall_time_s"]
            later += (seconds - lm) + lm * ratio["test"][1] / ratio["test"][0]
        else:
            later += seconds
        now += seconds
    return now, later, other


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("log"), ap.add_argument("runs", help="results/<model>")
    for name in ("steps", "test", "seeds"):
        ap.add_argument(f"--{name}", required=True, help="measured:target, e.g. 12:48")
    ap.add_argument("--parallel", type=int, default=2)
    args = ap.parse_args()
    ratio = {k: [float(x) for x in getattr(args, k).split(":")] for k in ("steps", "test", "seeds")}
    now, later, other = estimate(args.log, args.runs, ratio)
    seeds = ratio["seeds"][1] / ratio["seeds"][0]
    print(
        f"per-run job time (fine-tuning, evaluation, the search's jobs): measured {now / 60:.0f} min; at the target "
        f"{later * seeds / 60:.0f} min (x{seeds:g} seeds); side by side on {args.parallel}: "
        f"{later * seeds / args.parallel / 3600:.1f} h + other jobs as measured {other / 60:.0f} min"
    )


if __name__ == "__main__":
    main()
