"""Where the time of a run went: Snakemake's `benchmark:` file of every job (results/benchmarks/), per
rule kind, and per fine-tuning and evaluation job the split between useful work (the training loop from
train.json; lm-eval's scoring from lm_eval.json and the forgetting measurement from forgetting.json: the
results the report shows) and fixed cost (imports, model loads, validation passes, the reload check, saving,
the latency probe): what a user's run paid for."""

from pathlib import Path

import pandas as pd

from peftbench import io

USEFUL = {
    "finetune": ("train.json", "wall_time_s", "training loop"),
    "finetune_candidate": ("train.json", "wall_time_s", "training loop"),
    "evaluate": ("lm_eval.json", ("peftbench", "wall_time_s"), "lm-eval scoring + forgetting"),
    "evaluate_tuned": ("lm_eval.json", ("peftbench", "wall_time_s"), "lm-eval scoring + forgetting"),
}
# measured beside the main work in the same job, and also a result: {rule: (file, key)}; a run written before
# the file recorded its time counts it as fixed cost
ALSO_USEFUL = {"evaluate": ("forgetting.json", "wall_time_s"), "evaluate_tuned": ("forgetting.json", "wall_time_s")}


def _run_dir(results_dir, model, rel):
    """The folder of a job's run files, from its benchmark file's path (rule/task/method/seedN[/lr_xF])."""
    run = Path(results_dir) / model / Path(*rel.parts[1:4])
    if rel.parts[0] == "finetune_candidate":
        return run / "tuning" / rel.parts[4]
    if rel.parts[0] == "evaluate_tuned":
        return run / "tuned"
    return run


def _useful_seconds(rule, run_dir):
    if rule == "evaluate_tuned":  # the paper-default rate won: the job copied its evaluation, scoring nothing
        try:
            if float(io.read_json(Path(run_dir).parent / "tuning.json")["chosen_factor"]) == 1.0:
                return 0.0
        except (OSError, ValueError, KeyError, TypeError):
            return float("nan")
    also = ALSO_USEFUL.get(rule)
    extra = _read_seconds(run_dir, *also) if also else 0.0
    return _read_seconds(run_dir, *USEFUL[rule][:2]) + (0.0 if extra != extra else extra)


def _read_seconds(run_dir, name, key):
    try:
        data = io.read_json(Path(run_dir) / name)
        for k in key if isinstance(key, tuple) else (key,):
            data = data[k]
        return float(data)
    except (OSError, ValueError, KeyError, TypeError):
        return float("nan")


def jobs(results_dir, model):
    """One row per job that wrote a benchmark file: rule, job, wall s, useful s (NaN where not defined)."""
    root = Path(results_dir) / "benchmarks"
    rows = []
    for tsv in sorted(root.rglob("*.tsv")):
        try:
            s = float(pd.read_csv(tsv, sep="\t")["s"].iloc[0])
        except (OSError, ValueError, KeyError, IndexError, pd.errors.ParserError):
            continue  # a job still running, or a file cut short: not counted
        rel = tsv.relative_to(root).with_suffix("")
        rule = rel.parts[0]
        useful = float("nan")
        if rule in USEFUL and len(rel.parts) == (5 if rule == "finetune_candidate" else 4):
            useful = _useful_seconds(rule, _run_dir(results_dir, model, rel))
        rows.append({"rule": rule, "job": "/".join(rel.parts[1:]) or rule, "wall_s": s, "useful_s": useful})
    return pd.DataFrame(rows, columns=["rule", "job", "wall_s", "useful_s"])


def per_rule(df):
    """Wall time per rule kind: jobs, total, median per job, share of all job time, and for fine-tuning and
    evaluation the fixed cost (job wall time minus its useful work) as a share of the job time."""
    if not len(df):
        return pd.DataFrame()
    g = df.groupby("rule")
    out = pd.DataFrame({"jobs": g.size(), "total s": g.wall_s.sum().round(1), "median s": g.wall_s.median().round(1)})
    out["share of job time"] = (100 * out["total s"] / out["total s"].sum()).round(1).astype(str) + "%"
    useful = g.useful_s.sum(min_count=1)
    fixed = 100 * (1 - useful / g.wall_s.sum())
    out["useful work"] = [USEFUL[r][2] if r in USEFUL else "--" for r in out.index]
    out["fixed cost"] = [f"{f:.0f}%" if f == f else "--" for f in fixed]
    return out.sort_values("total s", ascending=False).rename_axis("rule").reset_index()
