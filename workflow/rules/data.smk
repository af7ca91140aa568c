from peftbench.data import build as pb_build


rule data:
    """One task's deterministic train/validation/test JSONL (sizes and seed from the profile)."""
    input: lambda wc: pb_build.inputs(TASK_SPECS[wc.task], config["tasks"][wc.task])   # task.yaml + local data files
    output: expand(f"{R}/data/{{{{task}}}}/{{split}}.jsonl", split=["train", "validation", "test"])
    params: sizes=lambda wc: config["tasks"][wc.task]
    resources: **rule_resources("data")
    log: f"{R}/logs/data_{{task}}.log"
    script: "../scripts/build_data.py"
