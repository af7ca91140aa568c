from peftbench.report import report as pb_report

report: "../report/workflow.rst"      # the front page of `snakemake --report`

# {title: csv} of the cost measurements (results/costs/*.csv), shown as tables beside the papers' figures;
# a file named *latency*.csv also draws the paper-vs-ours latency figure.
# Which ones the DAG runs: the profile's `costs` list.
REPORT_COSTS = {pb_report.COST_TITLES[f"{name}.csv"]: f"{R}/costs/{name}.csv" for name in config["costs"]}
REPORT_FILES = pb_report.output_files(config["reports"], TASKS, REPORT_COSTS, tuning=bool(TUNED))
# name -> (caption, category, labels) for `snakemake --report`; LaTeX and the Markdown are plain outputs
REPORTED = {"html": ("report_html", "Report", {"file": "report.html"}),
            "storage": ("storage", "Costs", {"figure": "storage per method"}),
            "latency": ("latency", "Costs", {"figure": "latency overhead per method"}),
            "latency_paper": ("latency_paper", "Papers vs ours", {"table": "latency overhead: paper vs ours"}),
            "paper_budget": ("paper_budget", "Papers vs ours", {"table": "parameter budget"}),
            "paper_order": ("paper_order", "Papers vs ours", {"table": "ordering of methods"}),
            "claims": ("claims", "Claims", {"table": "claims and verdicts"}),
            "intervals": ("intervals", "Claims", {"table": "scores with intervals, paired differences"})}
for _t in TASKS:
    REPORTED.update({f"table_{_t}": ("table", _t, {"figure": "1: comparison table (CSV)"}),
                     f"pareto_{_t}": ("pareto", _t, {"figure": "2: score against trainable parameters"}),
                     f"loss_{_t}": ("loss", _t, {"figure": "3: training loss"})})


rule summary:
    """One row per (model, task, method, seed), from exactly these files (so a changed or deleted one
    rebuilds the table); a run whose files disagree (state sha256, config hash) is left out and listed."""
    input: [all_runs(f) for f in RUN_FILES],
           all_runs("forgetting.json"), tuned_runs("tuning.json"), tuned_runs("tuned/lm_eval.json")   # fairness.smk (issue 13)
    output: f"{R}/summary.csv"
    params: runs=all_runs("")
    benchmark: f"{R}/benchmarks/summary.tsv"       # Snakemake's wall time, CPU time, memory: the report's time per rule
    log: f"{R}/logs/summary.log"
    conda: CONDA_ENV
    script: "../scripts/summary.py"


rule report:
    """reports/: report.md, a self-contained report.html, the tables as CSV and LaTeX, the figures as PNG,
    from summary.csv and the runs' loss curves. `python -m peftbench.report` rebuilds the same files
    from results/ without Snakemake (and without training or evaluating anything)."""
    input:
        summary=f"{R}/summary.csv",
        train=all_runs("train.json"),
        samples=all_runs("samples.jsonl"),       # per-example scores: the intervals and the claims' verdicts
        claims=PB_ROOT / "config" / "claims.yaml",
        costs=list(REPORT_COSTS.values()),
        checks=expand(f"{R}/data/{{task}}/checks.json", task=TASKS),     # the data stage's warnings
        task_spec=task_yaml(*TASKS),             # the main metric of each task
    output: **{name: reported(name, path) for name, path in REPORT_FILES.items()}
    params:
        reports=lambda wc, output: str(Path(output.md).parent),     # config["reports"], from the output: lint
        tasks=TASKS,
        expected=[(t, m) for t in TASKS for m in METHODS],
        costs=REPORT_COSTS,
        # seed variance 0 by construction (zero-shot), not unknown: peftbench.stats.bootstrap
        seed_independent=[m for m in METHODS if not pb_config.seed_dependent(config, METHOD_SPECS[m])],
    log: f"{R}/logs/report.log"
    conda: CONDA_ENV
    script: "../scripts/report.py"
