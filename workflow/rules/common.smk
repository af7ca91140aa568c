# Shared by every rule: the validated profile, the discovered methods and tasks, the paths.
import sys

sys.path.insert(0, workflow.basedir)          # the peftbench library lives next to the Snakefile
from peftbench import config as pb_config, offline, preflight, runspec as pb_runspec, warm_worker

CODE = Path(workflow.basedir)
try:
    config, METHOD_SPECS, METHODS, TASK_SPECS = preflight.workflow(config, CODE)   # validated, or one clear error
    TASKS = list(TASK_SPECS)
except pb_config.ConfigError as e:
    raise WorkflowError(str(e)) from None
_went_offline = offline.apply(config, TASK_SPECS)    # before any job: jobs inherit the environment
if _went_offline:
    print("peftbench: model and data are local, so offline: " + " ".join(f"{k}=1" for k in _went_offline), file=sys.stderr)

R = config["results"]
MODEL = config["model"]["name"]
SEEDS = config["seeds"]
JOB_THREADS = config.get("threads") or workflow.cores     # all cores per job by default: runs do not overlap
BASE = f"{R}/{MODEL}/base_model"
RUN = f"{R}/{MODEL}/{{task}}/{{method}}/seed{{seed}}"
REPORT_MD = f"{config['reports']}/report.md"
REPORT_HTML = f"{config['reports']}/report.html"

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


def rule_resources(rule):
    """The profile's scheduler resources for a rule (gpu, mem_mb, runtime); none by default."""
    return pb_config.rule_resources(config, rule)


# Cheap aggregation runs where Snakemake runs, not as a cluster job (a no-op for local runs).
localrules: summary, report, union_data, union_member
