from peftbench import pipeline

with pipeline.logged(snakemake):
    pipeline.latency_job(snakemake.config, snakemake.input.base, snakemake.params.spec, snakemake.input.state,
                         snakemake.input.test, snakemake.output[0], snakemake.threads)
