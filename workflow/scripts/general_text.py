from peftbench import warm_worker

warm_worker.delegate()  # a local run: this script runs forked from the warm worker, its libraries imported

from peftbench.stages import forgetting, pipeline

with pipeline.logged(snakemake):
    forgetting.build(snakemake.output[0], snakemake.params.block["texts"], snakemake.params.block["seed"])
