rule latency:
    """Median ms per generated token at batch 1 on the same test prompts for every method."""
    input:
        base=BASE,
        state=f"{RUN}/task_state.safetensors",
        test=f"{R}/data/{{task}}/test.jsonl",
    output: f"{RUN}/latency.json"
    params: spec=lambda wc: METHOD_SPECS[wc.method]
    threads: workflow.cores
    log: f"{RUN}/latency.log"
    script: "../scripts/latency.py"
