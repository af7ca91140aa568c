from peftbench import base_model, pipeline

with pipeline.logged(snakemake):
    pipeline._threads(snakemake.threads)
    base_model.build(snakemake.params.source, snakemake.output[0], snakemake.params.tiny or None)
