# peftbench: fine-tune every method on every task, score with lm-eval, render the comparison.
#   snakemake --cores all                                   # the embedded default (config/config.yaml)
#   snakemake --cores all --configfile config/smoke.yaml    # tiny model, a few dozen examples
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

configfile: Path(workflow.basedir) / "config" / "config.yaml"

# Used only under `snakemake --sdm apptainer`: the image built from workflow/envs/peftbench.def in the
# repository root (`apptainer build peftbench.sif workflow/envs/peftbench.def`). `--sdm conda` uses the rules'
# `conda:` instead (workflow/envs/peftbench.yaml); a plain run, neither.
container: "peftbench.sif"

include: "workflow/rules/common.smk"

onstart: warm_worker.start(workflow, config)      # jobs fork from one process with the libraries imported
onsuccess: warm_worker.stop()
onerror: warm_worker.stop()

include: "workflow/rules/base.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/fairness.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/costs.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/tracking.smk"

rule all:
    # every file of the DAG is a target: Snakemake does not rebuild a missing intermediate file whose consumers
    # (summary.csv, the report) look up to date, so a deleted train.json, tuning.json or cost table, or a report
    # table a new profile key asks for, would otherwise leave a stale or missing result behind
    input: REPORT_FILES.values(), f"{R}/summary.csv", REPORT_COSTS.values(), GENERAL_BASE,
           expand(f"{R}/data/{{task}}/checks.json", task=TASKS),
           [all_runs(f) for f in RUN_FILES], all_runs("forgetting.json"), all_runs("lm_eval_task.yaml"), search_files(),
           [f"{R}/tracking/mlflow.json"] if config["tracking"]["mlflow"] else []
