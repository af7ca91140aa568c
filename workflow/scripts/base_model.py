from peftbench import warm_worker

warm_worker.delegate()  # a local run: this script runs forked from the warm worker, its libraries imported

from peftbench.model import assemble, base_model
from peftbench.stages import pipeline

with pipeline.logged(snakemake):
    assemble.set_threads(snakemake.threads)
    base_model.build(snakemake.params.source, snakemake.output[0], snakemake.params.tiny or None)
