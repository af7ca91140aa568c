from peftbench import warm_worker

warm_worker.delegate()  # a local run: this script runs forked from the warm worker, its libraries imported

from peftbench.stages import pipeline

with pipeline.logged(snakemake):
    pipeline.union_member(
        snakemake.input.state,
        snakemake.input.train,
        snakemake.wildcards.task,
        snakemake.output.state,
        snakemake.output.train,
    )
