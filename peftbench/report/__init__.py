"""results/ -> reports/: the summary, the tables, the figures and the report itself.

- `aggregate`: every run's JSON -> results/summary.csv, one row per (model, task, method, seed).
- `tables`, `figures`: the report's tables (numbers as data, then formatted) and PNG figures.
- `fairness`: forgetting, training cost and the learning-rate search's tuned scores.
- `timing`: where the run's time went (Snakemake's benchmark files, per rule kind).
- `report`: report.md and a self-contained report.html (report_tables.js sorts its tables).
The statistics behind every interval and verdict live in peftbench.stats."""
