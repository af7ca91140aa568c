from peftbench import warm_worker

warm_worker.delegate()  # a local run: this script runs forked from the warm worker, its libraries imported

from peftbench.model import assemble
from peftbench.stages import forgetting, pipeline

with pipeline.logged(snakemake):
    assemble.set_threads(snakemake.threads)
    forgetting.base_job(snakemake.params.run, snakemake.input.base, snakemake.input.general, snakemake.output[0])
