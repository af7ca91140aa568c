from peftbench.stages import pipeline, tuning

with pipeline.logged(snakemake):
    tuning.select_job(snakemake.params.factors, list(snakemake.input), snakemake.output[0])
