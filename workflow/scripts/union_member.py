from peftbench.stages import pipeline

with pipeline.logged(snakemake):
    pipeline.union_member(
        snakemake.input.state,
        snakemake.input.train,
        snakemake.wildcards.task,
        snakemake.output.state,
        snakemake.output.train,
    )
