from peftbench import pipeline

with pipeline.logged(snakemake):
    pipeline.evaluate_job(snakemake.config, snakemake.input.base, snakemake.wildcards.task, snakemake.params.spec,
                          snakemake.input.state, snakemake.input.test, snakemake.output.results, snakemake.threads)
