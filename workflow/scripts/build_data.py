import os
from pathlib import Path

from peftbench import pipeline

with pipeline.logged(snakemake):
    counts = pipeline.build_data(snakemake.wildcards.task, snakemake.params.sizes, Path(snakemake.output[0]).parent,
                                 Path(os.path.normpath(snakemake.scriptdir)).parents[1] / "tasks")     # this workflow's task folders
    print(f"{snakemake.wildcards.task}: {counts}")
