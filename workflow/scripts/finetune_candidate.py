from peftbench import warm_worker

warm_worker.delegate()  # a local run: this script runs forked from the warm worker, its libraries imported

from peftbench.stages import pipeline, tuning

with pipeline.logged(snakemake):
    tuning.finetune_candidate(
        snakemake.params.run,
        snakemake.input.base,
        snakemake.wildcards.task,
        snakemake.params.spec,
        int(snakemake.wildcards.seed),
        snakemake.input.train.rsplit("/", 1)[0],
        snakemake.wildcards.factor,
        snakemake.output.state,
        snakemake.output.train,
        snakemake.threads,
        pipeline.workflow_tasks(snakemake),  # this workflow's task folders
    )
