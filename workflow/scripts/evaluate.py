from peftbench import warm_worker

warm_worker.delegate()  # a local run: this script runs forked from the warm worker, its libraries imported

from peftbench.stages import pipeline

with pipeline.logged(snakemake):
    out = snakemake.output
    pipeline.evaluate_job(
        snakemake.params.run,
        snakemake.input.base,
        snakemake.wildcards.task,
        snakemake.params.spec,
        snakemake.input.state,
        snakemake.input.test,
        out.results,
        out.samples,
        out.latency,
        snakemake.threads,
        pipeline.workflow_tasks(snakemake),
        train_file=snakemake.input.train_data,
        seed=int(snakemake.wildcards.seed),
        forgetting=(snakemake.input.general, snakemake.input.general_base, out.forgetting),
    )
