# Opt-in experiment tracking (issue 29): with `tracking: {mlflow: <URI>}` in the profile, the finished runs go to
# MLflow after the report, from the files the report read (peftbench/tracking.py). Off by default: no job.


rule track:
    """Every run of the profile logged to the MLflow store `tracking.mlflow`: per task and method the seed mean
    with its interval, per seed a nested run with its settings, loss curve, scores and costs. A rerun replaces
    the runs it logged before; the output lists the MLflow run ids."""
    input:
        summary=f"{R}/summary.csv",
        intervals=REPORT_FILES["intervals"],
        train=all_runs("train.json"),
    output: f"{R}/tracking/mlflow.json"
    params:
        tracking=config["tracking"],
        results=lambda wc, input: str(Path(input.summary).parent),   # {results}: its runs lie in <model>/<task>/<method>/seed<s>
    log: f"{R}/logs/track.log"
    conda: CONDA_ENV
    script: "../scripts/track.py"
