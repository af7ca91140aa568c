# peftbench: fine-tune every method on every task, score with lm-eval, render the comparison.
#   snakemake --cores all                                   # the embedded default (config/config.yaml)
#   snakemake --cores all --configfile config/smoke.yaml    # tiny model, a few dozen examples
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

configfile: Path(workflow.basedir) / "config" / "config.yaml"

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

rule all:
    # every run's files are targets too: Snakemake does not rebuild a missing intermediate file whose consumers
    # (summary.csv, the report) look up to date, so a deleted train.json would otherwise leave a stale table
    input: REPORT_MD, REPORT_HTML, [all_runs(f) for f in RUN_FILES]
