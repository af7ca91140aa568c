# Shared by every rule: the validated profile, the discovered methods and tasks, the paths, and the helper
# functions of the other .smk files (kept here, apart from their rules, as `snakemake --lint` asks).
import os
import sys

sys.path.insert(0, workflow.basedir)          # the peftbench library lives next to the Snakefile
from peftbench import config as pb_config, offline, preflight, runspec as pb_runspec, warm_worker

CODE = Path(workflow.basedir)
try:
    for _profile in workflow.configfiles:   # Snakemake's own loader builds Python objects from tags (!!python/name:...)
        pb_config.load_yaml(_profile)   # plain data only: a tag is named with its file and line
    config, METHOD_SPECS, METHODS, TASK_SPECS = preflight.workflow(config, CODE)   # validated, or one clear error
    TASKS = list(TASK_SPECS)
except pb_config.ConfigError as e:
    raise WorkflowError(str(e)) from None
_went_offline = offline.apply(config, TASK_SPECS)    # before any job: jobs inherit the environment
if _went_offline:
    print("peftbench: model and data are local, so offline: " + " ".join(f"{k}=1" for k in _went_offline), file=sys.stderr)

R = config["results"]
try:
    preflight.stored_states(R)   # a state truncated in place keeps its mtime: Snakemake alone would skip its run
except pb_config.ConfigError as e:
    raise WorkflowError(str(e)) from None
MODEL = config["model"]["name"]
SEEDS = config["seeds"]
def all_cores(wildcards):
    """Every core of the run (--cores), read when a job is made: `snakemake --unlock` and a run whose cores
    come only from a global profile need no total while the workflow is parsed."""
    return workflow.cores


JOB_THREADS = config.get("threads") or all_cores     # all cores per job by default: runs do not overlap
BASE = f"{R}/{MODEL}/base_model"
RUN = f"{R}/{MODEL}/{{task}}/{{method}}/seed{{seed}}"
REPORT_MD = f"{config['reports']}/report.md"
REPORT_HTML = f"{config['reports']}/report.html"

# Software deployment, used only when asked for; by default jobs run in the Python that runs Snakemake.
# --sdm conda: the rules that run code name CONDA_ENV (relative to workflow/rules/) as their environment; its
#   post-deploy script installs this checkout's library into it.
# --sdm apptainer: every job runs in the Snakefile's `container:` (workflow/envs/peftbench.def), which imports
#   this checkout's library from the bind-mounted checkout.
# Both find the checkout through PEFTBENCH_CODE (set here, not read: nothing for `envvars:` to assert).
CONDA_ENV = "../envs/peftbench.yaml"
_SDM = {m.name for m in workflow.deployment_settings.deployment_method} if workflow.deployment_settings else set()
if _SDM & {"CONDA", "APPTAINER"}:
    os.environ.update(PEFTBENCH_CODE=str(CODE))
# a shell: rule's Python: the environment's own under conda or in the container (sys.executable is this process's)
PYTHON = "python" if _SDM & {"CONDA", "APPTAINER"} else sys.executable

# train_union (ReFT Table 1): one training per (method, seed) on the members' data, evaluated per member
UNION = pb_config.train_union(config)
UNION_TASKS = UNION["tasks"] if UNION else []
SOLO_TASKS = [t for t in TASKS if t not in UNION_TASKS]      # tasks that train their own runs
UNION_RUN = f"{R}/{MODEL}/{{union}}/{{method}}/seed{{seed}}"


def one_of(names):
    """A wildcard pattern matching exactly these names (none: a pattern that matches nothing)."""
    return "|".join(names) or "(?!)"


wildcard_constraints:
    task="|".join(TASKS),
    method="|".join(METHODS),
    seed=r"\d+",
    union=one_of([UNION["name"]] if UNION else []),


RUN_FILES = ["task_state.safetensors", "train.json", "lm_eval.json", "samples.jsonl", "latency.json"]   # one run's outputs


def all_runs(filename):
    """Every (task, method, seed) run; a method's seeds are the profile's method_seeds[method] or seeds (the
    first only for a method whose result cannot depend on its seed: pb_config.seed_dependent)."""
    return [path for m in METHODS
            for path in expand(f"{RUN}/{filename}", task=TASKS, method=[m], seed=pb_config.run_seeds(config, m, METHOD_SPECS[m]))]


def task_yaml(*names):
    """The task.yaml of each task a job reads (its target ending, main metric): an input, since the data stage,
    a checkpoint, no longer reruns every job after it when only one split changed."""
    return [CODE / "tasks" / t / "task.yaml" for t in names]


def method_files(wc):
    d = Path(METHOD_SPECS[wc.method]["dir"])          # a profile's variant uses its parent's folder
    return [d / "method.yaml", d / "method.py"]


def union_run_file(filename):
    """A union member's input: the union's run folder's file for the member's method and seed (finetune.smk)."""
    return lambda wc: f"{UNION_RUN}/{filename}".format(union=UNION["name"], method=wc.method, seed=wc.seed)


def rule_resources(rule):
    """The profile's scheduler resources for a rule (gpu, mem_mb, runtime); none by default."""
    return pb_config.rule_resources(config, rule)


# Cheap aggregation runs where Snakemake runs, not as a cluster job (a no-op for local runs).
localrules: summary, report, union_data, union_member


# fairness.smk's helpers (issue 13); TUNED, LR_FACTORS and CANDIDATE are defined there, before any call
def tuned_runs(filename):
    return expand(f"{RUN}/{filename}", task=TASKS, method=TUNED, seed=SEEDS)


def search_files():
    """Every file of the learning-rate search: the candidates' runs and criteria, the choice, the winner's
    evaluation (targets of `all`, so a deleted one is rebuilt: see the Snakefile)."""
    out = tuned_runs("tuning.json") + [f for name in pb_tuning.EVALUATED for f in tuned_runs(f"tuned/{name}")]
    for task, method, seed in itertools.product(TASKS, TUNED, SEEDS):
        for d in candidate_runs(SimpleNamespace(task=task, method=method, seed=seed)):
            out += [f"{d}/task_state.safetensors", f"{d}/train.json", f"{d}/val_loss.json"]
    return out


def candidate_runs(wc):
    """Each factor's run folder: factor 1 is the ordinary (paper-default) run."""
    run = RUN.format(task=wc.task, method=wc.method, seed=wc.seed)
    return [run if float(f) == 1 else CANDIDATE.format(task=wc.task, method=wc.method, seed=wc.seed, factor=f)
            for f in LR_FACTORS]


# costs.smk's
def methods_code(names):
    return [Path(METHOD_SPECS[m]["dir"]) / f for m in names for f in ("method.yaml", "method.py")]


# report.smk's; REPORTED is defined there
def reported(name, path):
    if name not in REPORTED:
        return str(path)
    caption, category, labels = REPORTED[name]
    return report(str(path), caption=f"../report/{caption}.rst", category=category, labels=labels)
