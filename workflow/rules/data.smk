from peftbench.data import build as pb_build


# A checkpoint: Snakemake re-evaluates the DAG once it has run, so a job whose input split came out byte-identical
# (its checksum as recorded; profiles/default raises the size limit) is not rerun: one test record edited reruns
# the evaluations, not the fine-tuning. What else a job reads of the task is its own input (task_yaml).
checkpoint data:
    """One task's deterministic train/validation/test JSONL (sizes and seed from the profile)."""
    input:
        task=lambda wc: pb_build.inputs(TASK_SPECS[wc.task], config["tasks"][wc.task]),   # task.yaml + local data files
        base=BASE,                          # its tokenizer: a record too long for max_seq_len fails here
    output:
        splits=expand(f"{R}/data/{{{{task}}}}/{{split}}.jsonl", split=["train", "validation", "test"]),
        checks=f"{R}/data/{{task}}/checks.json",     # counts and test records leaking from training (the report warns)
    params:
        sizes=lambda wc: config["tasks"][wc.task],
        # the profile's (a method's own override is checked when it trains): a new method folder must not rebuild the data
        max_seq_len=pb_runspec.profile_max_seq_len(config),
    priority: 1                         # before the jobs that wait for it (small inputs would put it after every evaluation)
    resources: **rule_resources("data")
    benchmark: f"{R}/benchmarks/data/{{task}}.tsv"       # Snakemake's wall time, CPU time, memory: the report's time per rule
    log: f"{R}/logs/data_{{task}}.log"
    conda: CONDA_ENV
    script: "../scripts/build_data.py"


rule union_data:
    """train_union: the members' train/validation splits concatenated and shuffled (LLM-Adapters'
    commonsense_170k is the eight training sets in one file); each member's test split stays its own."""
    input: expand(f"{R}/data/{{task}}/{{split}}.jsonl", task=UNION_TASKS, split=["train", "validation"])
    output: expand(f"{R}/data/{{{{union}}}}/{{split}}.jsonl", split=["train", "validation"])
    params: tasks=UNION_TASKS, seed=UNION.get("seed", 1234) if UNION else None
    priority: 1
    benchmark: f"{R}/benchmarks/data/{{union}}.tsv"
    log: f"{R}/logs/data_{{union}}.log"
    conda: CONDA_ENV
    script: "../scripts/union_data.py"
