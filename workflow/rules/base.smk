rule base_model:
    """The base model as a plain safetensors folder that every later stage loads."""
    output: directory(BASE)
    params: source=config["model"]["source"], tiny=config["model"].get("tiny", {})
    threads: JOB_THREADS
    resources: **rule_resources("base_model")
    log: f"{R}/logs/base_model.log"
    script: "../scripts/base_model.py"
