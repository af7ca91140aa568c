from peftbench.stages import forgetting, pipeline

with pipeline.logged(snakemake):
    forgetting.build(snakemake.output[0], snakemake.params.block["texts"], snakemake.params.block["seed"])
