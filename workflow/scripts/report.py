import os
from pathlib import Path

from peftbench import pipeline, report

with pipeline.logged(snakemake):
    written = report.render(
        snakemake.input.summary,
        snakemake.input.train,
        snakemake.params.reports,
        snakemake.params.tasks,
        snakemake.params.expected,
        snakemake.params.costs,
        Path(os.path.normpath(snakemake.scriptdir)).parents[1] / "tasks",
        snakemake.input.checks,
    )
    print("\n".join(map(str, written.values())))
