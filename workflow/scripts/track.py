from peftbench import warm_worker

warm_worker.delegate()  # a local run: this script runs forked from the warm worker, its libraries imported

from peftbench import io, tracking
from peftbench.stages import pipeline

with pipeline.logged(snakemake):
    cfg = snakemake.params.tracking
    logged = tracking.log_runs(
        cfg["mlflow"], cfg["experiment"], snakemake.input.summary, snakemake.input.intervals, snakemake.params.results
    )
    io.write_json(snakemake.output[0], logged)
    print(f"{len(logged['runs'])} MLflow runs in experiment {logged['experiment']!r} at {logged['uri']}")
