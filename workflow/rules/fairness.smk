# A fair race (issue 13): the held-out general text every evaluate job scores (forgetting), and the same
# learning-rate search for every trained method (profile key `tuning`, config/tuning.yaml; off by default).
import itertools
from types import SimpleNamespace

from peftbench.stages import tuning as pb_tuning

GENERAL_TEXT = f"{R}/data/general/wiki_leads.jsonl"
GENERAL_BASE = f"{R}/{MODEL}/general_loss_base.json"
LR_FACTORS = [pb_tuning.label(f) for f in config["tuning"]["lr_factors"]]
TUNED = pb_tuning.tuned_methods(config, METHOD_SPECS, METHODS)
CANDIDATE = f"{RUN}/tuning/lr_x{{factor}}"

localrules: general_text, select_lr        # cheap: no cluster job

wildcard_constraints:
    factor=r"\d+(\.\d+)?(e-?\d+)?",


rule general_text:
    """Wikipedia leads that no task uses (disjoint from every split by construction), seeded."""
    output: GENERAL_TEXT
    params: block=config["forgetting"]
    benchmark: f"{R}/benchmarks/general_text.tsv"       # Snakemake's wall time, CPU time, memory: the report's time per rule
    log: f"{R}/logs/general_text.log"
    conda: CONDA_ENV
    script: "../scripts/general_text.py"


rule general_loss_base:
    """The base model's loss on the general text: what every run's forgetting.json is set against."""
    input: base=BASE, general=GENERAL_TEXT
    output: GENERAL_BASE
    params: run=pb_runspec.general_loss(config)
    threads: JOB_THREADS          # the same thread count as the evaluate jobs: zero-shot matches bit for bit
    priority: 1                   # every evaluation waits for it (at 0, fine-tuning jobs went first for 9 min)
    resources: **rule_resources("evaluate")
    benchmark: f"{R}/benchmarks/general_loss_base.tsv"       # Snakemake's wall time, CPU time, memory: the report's time per rule
    log: f"{R}/logs/general_loss_base.log"
    conda: CONDA_ENV
    script: "../scripts/general_loss_base.py"


rule finetune_candidate:
    """One learning-rate candidate of the search: the method's rate x {factor}, everything else as finetune."""
    input:
        base=BASE,
        train=f"{R}/data/{{task}}/train.jsonl",
        validation=f"{R}/data/{{task}}/validation.jsonl",
        method=method_files,
        task_spec=lambda wc: task_yaml(*pb_config.union_members(config, wc.task)),
    output:
        state=f"{CANDIDATE}/task_state.safetensors",
        train=f"{CANDIDATE}/train.json",
    params:
        spec=lambda wc: METHOD_SPECS[wc.method],
        run=lambda wc: pb_runspec.training(config, METHOD_SPECS[wc.method], wc.task),   # the job scales its rate
    threads: JOB_THREADS
    resources: **rule_resources("finetune")
    benchmark: f"{R}/benchmarks/finetune_candidate/{{task}}/{{method}}/seed{{seed}}/lr_x{{factor}}.tsv"
    log: f"{CANDIDATE}/finetune.log"
    conda: CONDA_ENV
    script: "../scripts/finetune_candidate.py"


rule validation_loss:
    """The search's criterion for the factor-1 candidate (the ordinary run): the validation loss of its stored
    model. Only in a profile that searches: nothing else reads it, so fine-tuning jobs skip the pass."""
    input:
        base=BASE,
        state=f"{RUN}/task_state.safetensors",
        train=f"{RUN}/train.json",
        validation=f"{R}/data/{{task}}/validation.jsonl",
        method=method_files,
        task_spec=lambda wc: task_yaml(*pb_config.union_members(config, wc.task)),
    output: f"{RUN}/val_loss.json"
    params: spec=lambda wc: METHOD_SPECS[wc.method], run=pb_runspec.validation_loss(config)
    threads: JOB_THREADS
    resources: **rule_resources("evaluate")
    benchmark: f"{R}/benchmarks/validation_loss/{{task}}/{{method}}/seed{{seed}}.tsv"       # Snakemake's wall time, CPU time, memory: the report's time per rule
    log: f"{RUN}/validation_loss.log"
    conda: CONDA_ENV
    script: "../scripts/validation_loss.py"


use rule validation_loss as validation_loss_candidate with:
    input:
        base=BASE,
        state=f"{CANDIDATE}/task_state.safetensors",
        train=f"{CANDIDATE}/train.json",
        validation=f"{R}/data/{{task}}/validation.jsonl",
        method=method_files,
        task_spec=lambda wc: task_yaml(*pb_config.union_members(config, wc.task)),
    output: f"{CANDIDATE}/val_loss.json"
    benchmark: f"{R}/benchmarks/validation_loss/{{task}}/{{method}}/seed{{seed}}/lr_x{{factor}}.tsv"
    log: f"{CANDIDATE}/validation_loss.log"


rule select_lr:
    """The winner of the search on validation loss (the candidates' train.json and val_loss.json only: no test
    data)."""
    input:
        train=lambda wc: [f"{d}/train.json" for d in candidate_runs(wc)],
        val_loss=lambda wc: [f"{d}/val_loss.json" for d in candidate_runs(wc)],
    output: f"{RUN}/tuning.json"
    params: factors=LR_FACTORS
    benchmark: f"{R}/benchmarks/select_lr/{{task}}/{{method}}/seed{{seed}}.tsv"       # Snakemake's wall time, CPU time, memory: the report's time per rule
    log: f"{RUN}/select_lr.log"
    conda: CONDA_ENV
    script: "../scripts/select_lr.py"


rule evaluate_tuned:
    """The search's winner, evaluated as any run (the paper-default run's evaluation when factor 1 wins)."""
    input:
        base=BASE,
        tuning=f"{RUN}/tuning.json",
        states=lambda wc: [f"{d}/task_state.safetensors" for d in candidate_runs(wc)],
        default=[f"{RUN}/{f}" for f in pb_tuning.EVALUATED],
        test=f"{R}/data/{{task}}/test.jsonl",
        train=f"{R}/data/{{task}}/train.jsonl",
        general=GENERAL_TEXT, general_base=GENERAL_BASE,
        task=lambda wc: pb_config.lm_eval_files(CODE / "tasks" / wc.task),   # + the YAMLs it includes
        task_spec=lambda wc: task_yaml(wc.task),
    output: [f"{RUN}/tuned/{f}" for f in pb_tuning.EVALUATED]
    params:
        spec=lambda wc: METHOD_SPECS[wc.method],
        default=lambda wc: RUN.format(task=wc.task, method=wc.method, seed=wc.seed),
        run=pb_runspec.evaluation(config),
    threads: JOB_THREADS
    resources: **rule_resources("evaluate")
    benchmark: f"{R}/benchmarks/evaluate_tuned/{{task}}/{{method}}/seed{{seed}}.tsv"       # Snakemake's wall time, CPU time, memory: the report's time per rule
    log: f"{RUN}/evaluate_tuned.log"
    conda: CONDA_ENV
    script: "../scripts/evaluate_tuned.py"
