from peftbench import warm_worker

warm_worker.delegate()  # a local run: this script runs forked from the warm worker, its libraries imported

from pathlib import Path

from peftbench.stages import pipeline, tuning

with pipeline.logged(snakemake):
    i = snakemake.input
    tuning.evaluate_tuned(
        snakemake.params.run,
        i.base,
        snakemake.wildcards.task,
        snakemake.params.spec,
        i.tuning,
        snakemake.params.default,
        i.test,
        i.train,
        int(snakemake.wildcards.seed),
        (i.general, i.general_base),
        Path(snakemake.output[0]).parent,
        snakemake.threads,
        pipeline.workflow_tasks(snakemake),  # this workflow's task folders
    )
