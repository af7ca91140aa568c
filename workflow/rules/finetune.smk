rule finetune:
    """Fine-tune {method} on {task} with the shared loop; store only what the method keeps per task."""
    wildcard_constraints: task=one_of(SOLO_TASKS)          # a union's members train in finetune_union
    input:
        base=BASE,
        train=f"{R}/data/{{task}}/train.jsonl",
        validation=f"{R}/data/{{task}}/validation.jsonl",
        method=method_files,
        task_spec=lambda wc: task_yaml(wc.task),
    output:
        state=f"{RUN}/task_state.safetensors",
        train=f"{RUN}/train.json",
    params:
        spec=lambda wc: METHOD_SPECS[wc.method],
        run=lambda wc: pb_runspec.training(config, METHOD_SPECS[wc.method], wc.task),   # what the job reads
    threads: JOB_THREADS
    resources: **rule_resources("finetune")
    benchmark: f"{R}/benchmarks/finetune/{{task}}/{{method}}/seed{{seed}}.tsv"       # Snakemake's wall time, CPU time, memory: the report's time per rule
    log: f"{RUN}/finetune.log"
    conda: CONDA_ENV
    script: "../scripts/finetune.py"


rule finetune_union:
    """Fine-tune {method} once on the union of the profile's train_union tasks (ReFT Table 1: one model on
    commonsense_170k, tested on each of the eight sets): log, checkpoints and the state in the union's folder."""
    input:
        base=BASE,
        train=f"{R}/data/{{union}}/train.jsonl",
        validation=f"{R}/data/{{union}}/validation.jsonl",
        method=method_files,
        task_spec=task_yaml(*UNION_TASKS),
    output:
        state=f"{UNION_RUN}/task_state.safetensors",
        train=f"{UNION_RUN}/train.json",
    params:
        spec=lambda wc: METHOD_SPECS[wc.method],
        run=lambda wc: pb_runspec.training(config, METHOD_SPECS[wc.method], wc.union),
    threads: JOB_THREADS
    resources: **rule_resources("finetune")
    benchmark: f"{R}/benchmarks/finetune/{{union}}/{{method}}/seed{{seed}}.tsv"
    log: f"{UNION_RUN}/finetune.log"
    conda: CONDA_ENV
    script: "../scripts/finetune.py"


rule union_member:
    """A member task's run folder: a symlink to the union's task state and a train.json naming the task and the
    union it was trained on, so that evaluate, summary and report read it as any run."""
    wildcard_constraints: task=one_of(UNION_TASKS)
    input:
        state=union_run_file("task_state.safetensors"),
        train=union_run_file("train.json"),
    output:
        state=f"{RUN}/task_state.safetensors",
        train=f"{RUN}/train.json",
    log: f"{RUN}/union_member.log"
    conda: CONDA_ENV
    script: "../scripts/union_member.py"
