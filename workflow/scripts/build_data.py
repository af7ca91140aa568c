from peftbench import warm_worker

warm_worker.delegate()  # a local run: this script runs forked from the warm worker, its libraries imported

from pathlib import Path

from peftbench.stages import pipeline

with pipeline.logged(snakemake):
    counts = pipeline.build_data(
        snakemake.wildcards.task,
        snakemake.params.sizes,
        Path(snakemake.output.checks).parent,
        pipeline.workflow_tasks(snakemake),  # this workflow's task folders
        snakemake.input.base,
        snakemake.params.max_seq_len,
    )
    print(f"{snakemake.wildcards.task}: {counts}")
