from peftbench import warm_worker

warm_worker.delegate()  # a local run: this script runs forked from the warm worker, its libraries imported

from peftbench.stages import pipeline

with pipeline.logged(snakemake):
    pipeline.finetune(
        snakemake.params.run,
        snakemake.input.base,
        getattr(snakemake.wildcards, "union", None) or snakemake.wildcards.task,  # finetune_union: the union
        snakemake.params.spec,
        int(snakemake.wildcards.seed),
        snakemake.input.train.rsplit("/", 1)[0],
        snakemake.output.state,
        snakemake.output.train,
        snakemake.threads,
        pipeline.workflow_tasks(snakemake),
    )  # this workflow's task folders
