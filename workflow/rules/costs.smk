# The cost rules, in one file:
# - paper_scale: measured without training a model (the papers' architectures on the meta device);
# - latency_overhead and task_switch: across methods in one process each (ratios, never times from separate
#   runs), the whole machine to themselves.
from peftbench.paths import ROOT as PB_ROOT
from peftbench.papers import paper_figures

COSTS = f"{R}/costs"
SWITCH_TASKS = (TASKS * 2)[:2]          # first task -> second (a one-task profile switches the task to itself)


rule paper_scale:
    """Trainable parameters and task-checkpoint bytes of the papers' methods at the papers' scale (GPT-2 M/L,
    GPT-3 175B, RoBERTa, BERT-large, LLaMA-7B, built on the meta device: no weights, no memory, no download),
    each beside the figure its paper prints. The table is also in the log."""
    input:
        # what peftbench.costs.paper_scale reads, from the checkout the library is imported from: the architectures,
        # the figures, and the counted methods' own code and defaults (a new method folder changes nothing here)
        PB_ROOT / "config" / "paper_architectures.yaml",
        PB_ROOT / "peftbench" / "costs" / "paper_scale.py",
        PB_ROOT / "peftbench" / "papers" / "paper_figures.py",
        PB_ROOT / "peftbench" / "papers" / "paper_figures.yaml",
        [PB_ROOT / "methods" / m / f for m in paper_figures.counted_methods() for f in ("method.yaml", "method.py")],
    output: f"{COSTS}/paper_scale.csv"                     # written atomically by peftbench.costs.paper_scale
    benchmark: f"{R}/benchmarks/paper_scale.tsv"       # Snakemake's wall time, CPU time, memory: the report's time per rule
    log: f"{R}/logs/paper_scale.log"
    conda: CONDA_ENV
    shell: f"{PYTHON} -m peftbench.costs.paper_scale --out {{output:q}} > {{log:q}} 2>&1"


rule latency_overhead:
    """(a) Forward latency of the base model, each method unmerged and LoRA merged, timed round-robin on the same
    inputs on a randomly initialised GPT-2-medium-shaped model (Hu et al. 2021, Table 1), with the FLOPs-predicted
    and the paper's overhead beside; (b) ms per generated token at batch 1 on the base model, every method."""
    input:
        base=BASE,
        test=f"{R}/data/{TASKS[0]}/test.jsonl",
        code=methods_code(pb_config.discover_methods(CODE / "methods")),
    output: f"{COSTS}/latency_overhead.csv"
    params:
        block=config["latency_overhead"],
        specs={m: METHOD_SPECS[m] for m in METHODS},
    threads: all_cores               # timed: the whole machine, no other job of the DAG beside it
    priority: 2                      # first whenever every core is free, not left for the run's tail
    resources: **rule_resources("latency_overhead")
    benchmark: f"{R}/benchmarks/latency_overhead.tsv"       # Snakemake's wall time, CPU time, memory: the report's time per rule
    log: f"{R}/logs/latency_overhead.log"
    conda: CONDA_ENV
    script: "../scripts/latency_overhead.py"


rule task_switch:
    """Per method: switch a loaded model from the first task's stored state to the second's and back (read the
    state, swap it in; merged LoRA: W - BA + B'A'), against full fine-tuning's checkpoint swap and a cold start."""
    input:
        base=BASE,
        states=[f"{R}/{MODEL}/{t}/{m}/seed{pb_config.run_seeds(config, m)[0]}/task_state.safetensors"
                for t in sorted(set(SWITCH_TASKS)) for m in METHODS],
        trains=[f"{R}/{MODEL}/{t}/{m}/seed{pb_config.run_seeds(config, m)[0]}/train.json"
                for t in sorted(set(SWITCH_TASKS)) for m in METHODS],
        code=methods_code(METHODS),
    output: f"{COSTS}/task_switch.csv"
    params:
        specs={m: METHOD_SPECS[m] for m in METHODS},
        states={m: [f"{R}/{MODEL}/{t}/{m}/seed{pb_config.run_seeds(config, m)[0]}/task_state.safetensors"
                    for t in SWITCH_TASKS] for m in METHODS},
        tasks=SWITCH_TASKS,
        block=config["task_switch"],
    threads: all_cores               # timed: the whole machine, no other job of the DAG beside it
    priority: 2                      # first whenever every core is free, not left for the run's tail
    resources: **rule_resources("task_switch")
    benchmark: f"{R}/benchmarks/task_switch.tsv"       # Snakemake's wall time, CPU time, memory: the report's time per rule
    log: f"{R}/logs/task_switch.log"
    conda: CONDA_ENV
    script: "../scripts/task_switch.py"
