"""peftbench: the library the Snakemake rules call. One module per stage of the DAG.

`peftbench.load_run(run_dir)` -> (transformers model, tokenizer) of a finished run (peftbench/runs.py)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository: methods/, tasks/, config/


def __getattr__(name):  # lazy: `import peftbench` stays free of torch (report, preflight)
    if name == "load_run":
        from .runs import load_run

        return load_run
    raise AttributeError(f"module 'peftbench' has no attribute {name!r}")
