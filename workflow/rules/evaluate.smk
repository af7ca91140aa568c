rule evaluate:
    """Score the fine-tuned model with lm-eval on the task's test split (lm-eval's JSON kept as is),
    then time generation on the same loaded model: median ms per generated token at batch 1 on the
    first test prompts, the same for every method."""
    input:
        base=BASE,
        state=f"{RUN}/task_state.safetensors",
        train=f"{RUN}/train.json",          # the state's sha256 and config hash: a new train.json re-evaluates
        test=f"{R}/data/{{task}}/test.jsonl",
        train_data=f"{R}/data/{{task}}/train.jsonl",        # few-shot demonstrations (never the test split)
        general=GENERAL_TEXT, general_base=GENERAL_BASE,       # forgetting: held-out general text
        task=lambda wc: pb_config.lm_eval_files(CODE / "tasks" / wc.task),   # + the YAMLs it includes
        task_spec=lambda wc: task_yaml(wc.task),
    output:
        results=f"{RUN}/lm_eval.json",
        samples=f"{RUN}/samples.jsonl",
        latency=f"{RUN}/latency.json",
        forgetting=f"{RUN}/forgetting.json",
        task_yaml=f"{RUN}/lm_eval_task.yaml",      # the task as scored: lm-eval's own CLI reruns it (lm_eval.json's command)
    params:
        spec=lambda wc: METHOD_SPECS[wc.method],
        run=pb_runspec.evaluation(config),      # what the job reads of the profile: a change re-scores
    threads: JOB_THREADS
    resources: **rule_resources("evaluate")
    benchmark: f"{R}/benchmarks/evaluate/{{task}}/{{method}}/seed{{seed}}.tsv"       # Snakemake's wall time, CPU time, memory: the report's time per rule
    log: f"{RUN}/evaluate.log"
    conda: CONDA_ENV
    script: "../scripts/evaluate.py"
