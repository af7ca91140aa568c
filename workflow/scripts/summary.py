from peftbench import warm_worker

warm_worker.delegate()  # a local run: this script runs forked from the warm worker, its libraries imported

from peftbench.report import aggregate
from peftbench.stages import pipeline

with pipeline.logged(snakemake):
    df = aggregate.summarize(snakemake.params.runs, snakemake.output[0])
    print(df.to_string())
