# Shared by every rule: the validated profile, the discovered methods and tasks, the paths.
import sys

sys.path.insert(0, workflow.basedir)          # the peftbench library lives next to the Snakefile
from peftbench import config as pb_config

CODE = Path(workflow.basedir)
try:
    pb_config.validate(config, "schema.yaml", "config (config/config.yaml + --configfile/--config)")
    config = pb_config.apply_defaults(config)
    METHOD_SPECS = pb_config.discover_methods(CODE / "methods")
    METHODS = pb_config.selected_methods(config, METHOD_SPECS)
    TASKS = list(config["tasks"])
    TASK_SPECS = {t: pb_config.load_task(t, CODE / "tasks") for t in TASKS}
except pb_config.ConfigError as e:
    raise WorkflowError(str(e)) from None

R = config["results"]
MODEL = config["model"]["name"]
SEEDS = config["seeds"]
JOB_THREADS = config.get("threads") or workflow.cores     # all cores per job by default: runs do not overlap
BASE = f"{R}/{MODEL}/base_model"
RUN = f"{R}/{MODEL}/{{task}}/{{method}}/seed{{seed}}"
REPORT_MD = f"{config['reports']}/report.md"
REPORT_HTML = f"{config['reports']}/report.html"

wildcard_constraints:
    task="|".join(TASKS),
    method="|".join(METHODS),
    seed=r"\d+",


def all_runs(filename):
    return expand(f"{RUN}/{filename}", task=TASKS, method=METHODS, seed=SEEDS)


def method_files(wc):
    d = CODE / "methods" / wc.method
    return [d / "method.yaml", d / "method.py"]
