from peftbench import warm_worker

warm_worker.delegate()  # a local run: this script runs forked from the warm worker, its libraries imported

from peftbench.costs import task_switch
from peftbench.model import assemble
from peftbench.stages import pipeline

with pipeline.logged(snakemake):
    assemble.set_threads(snakemake.threads)
    block = snakemake.params.block
    df = task_switch.run(
        snakemake.input.base,
        snakemake.params.specs,
        snakemake.params.states,
        snakemake.params.tasks,
        snakemake.output[0],
        block["repeats"],
        block["cold_repeats"],
    )
    print(df.to_string())
