from peftbench import warm_worker

warm_worker.delegate()  # a local run: this script runs forked from the warm worker, its libraries imported

from peftbench.stages import pipeline, tuning

with pipeline.logged(snakemake):
    tuning.select_job(
        snakemake.params.factors, list(snakemake.input.train), list(snakemake.input.val_loss), snakemake.output[0]
    )
