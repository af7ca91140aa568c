rule finetune:
    """Fine-tune {method} on {task} with the shared loop; store only what the method keeps per task."""
    input:
        base=BASE,
        train=f"{R}/data/{{task}}/train.jsonl",
        validation=f"{R}/data/{{task}}/validation.jsonl",
        method=method_files,
    output:
        state=f"{RUN}/task_state.safetensors",
        train=f"{RUN}/train.json",
    params:
        spec=lambda wc: METHOD_SPECS[wc.method],
        training=lambda wc: pb_config.training_settings(config, METHOD_SPECS[wc.method]),
    threads: JOB_THREADS
    resources: **rule_resources("finetune")
    benchmark: f"{R}/benchmarks/finetune/{{task}}/{{method}}/seed{{seed}}.tsv"       # Snakemake's wall time, CPU time, memory: the report's time per rule
    log: f"{RUN}/finetune.log"
    script: "../scripts/finetune.py"
