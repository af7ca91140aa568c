"""peftbench: the library the Snakemake rules call, grouped by job:

- `stages/`: what each DAG job runs (data, fine-tune, evaluate, forgetting, the lr search)
- `model/`: the base model, a method's model, and a finished run (`finished_run`, lm-eval's model, generation)
- `costs/`: latency overhead, task switching, paper-scale accounting (workflow/rules/costs.smk)
- `stats/`: intervals, paired differences, the claims' verdicts
- `report/`: summary.csv, tables, figures, report.md/html
- `papers/`: the papers' own figures, cited by table; `scoring/`: the tasks' metrics; `data/`: task sources
- beside them: `config` (profiles), `runspec` (what each job reads of one), `methods` (the method contract),
  `hyperparameters`, `identity`, `preflight`, `provenance`, `offline`, `io`, `paths`, `registry_data` (the offline
  model and text), `export` (a finished run for another library)

This file only hands two names on (importing it stays free of torch):
`peftbench.load_run(run_dir)` -> (transformers model, tokenizer) of a finished run (peftbench/model/finished_run.py);
`peftbench.ROOT`, the repository that holds methods/, tasks/ and config/ (peftbench/paths.py)."""

from peftbench.model.finished_run import load_run
from peftbench.paths import ROOT

__all__ = ["ROOT", "load_run"]
