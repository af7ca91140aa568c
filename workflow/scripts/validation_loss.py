from peftbench import warm_worker

warm_worker.delegate()  # a local run: this script runs forked from the warm worker, its libraries imported

from peftbench.stages import pipeline, tuning

with pipeline.logged(snakemake):
    tuning.validation_loss_job(
        snakemake.params.run,
        snakemake.input.base,
        snakemake.wildcards.task,
        snakemake.params.spec,
        snakemake.input.train.rsplit("/", 1)[0],
        snakemake.input.validation,
        snakemake.output[0],
        snakemake.threads,
        pipeline.workflow_tasks(snakemake),  # this workflow's task folders
    )
