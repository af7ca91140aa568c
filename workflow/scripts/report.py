from peftbench import warm_worker

warm_worker.delegate()  # a local run: this script runs forked from the warm worker, its libraries imported

from peftbench.report import report
from peftbench.stages import pipeline

with pipeline.logged(snakemake):
    written = report.render(
        snakemake.input.summary,
        snakemake.input.train,
        snakemake.params.reports,
        snakemake.params.tasks,
        snakemake.params.expected,
        snakemake.params.costs,
        pipeline.workflow_tasks(snakemake),
        snakemake.input.checks,
        seed_independent=snakemake.params.seed_independent,
    )
    print("\n".join(map(str, written.values())))
