rule data:
    """One task's deterministic train/validation/test JSONL (sizes and seed from the profile)."""
    input: lambda wc: [CODE / "tasks" / wc.task / "task.yaml"]
    output: expand(f"{R}/data/{{{{task}}}}/{{split}}.jsonl", split=["train", "validation", "test"])
    params: sizes=lambda wc: config["tasks"][wc.task]
    resources: **rule_resources("data")
    log: f"{R}/logs/data_{{task}}.log"
    script: "../scripts/build_data.py"
