from peftbench import warm_worker

warm_worker.delegate()  # a local run: this script runs forked from the warm worker, its libraries imported

from pathlib import Path

from peftbench.stages import pipeline

with pipeline.logged(snakemake):
    out_dir = Path(snakemake.output[0]).parent
    counts = pipeline.union_data(snakemake.params.tasks, out_dir.parent, out_dir, snakemake.params.seed)
    print(f"{snakemake.wildcards.union} = {' + '.join(snakemake.params.tasks)}: {counts}")
