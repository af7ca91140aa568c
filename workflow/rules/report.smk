rule summary:
    """One row per (model, task, method, seed)."""
    input: all_runs("train.json"), all_runs("lm_eval.json"), all_runs("latency.json")
    output: f"{R}/summary.csv"
    params: runs=all_runs("")
    log: f"{R}/logs/summary.log"
    script: "../scripts/summary.py"


rule report:
    """reports/report.md and a self-contained reports/report.html, from summary.csv alone."""
    input: f"{R}/summary.csv"
    output: md=REPORT_MD, html=REPORT_HTML
    params: expected=[(t, m) for t in TASKS for m in METHODS]
    log: f"{R}/logs/report.log"
    script: "../scripts/report.py"
