"""peftbench: the library the Snakemake rules call, grouped by job:

- `stages/`: what each DAG job runs (data, fine-tune, evaluate, forgetting, the lr search)
- `model/`: the base model, and running a fine-tuned one (lm-eval's model, generation)
- `costs/`: latency overhead, task switching, paper-scale accounting (workflow/rules/costs.smk)
- `stats/`: intervals, paired differences, the claims' verdicts
- `report/`: summary.csv, tables, figures, report.md/html
- `papers/`: the papers' own figures, cited by table; `scoring/`: the tasks' metrics; `data/`: task sources
- beside them: `config` (profiles), `methods` (the method contract), `hyperparameters`, `identity`,
  `preflight`, `provenance`, `offline`, `io`, `runs`, `registry_data` (the offline model and text)

`peftbench.load_run(run_dir)` -> (transformers model, tokenizer) of a finished run (peftbench/runs.py)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository: methods/, tasks/, config/


def __getattr__(name):  # lazy: `import peftbench` stays free of torch (report, preflight)
    if name == "load_run":
        from peftbench.runs import load_run

        return load_run
    raise AttributeError(f"module 'peftbench' has no attribute {name!r}")
