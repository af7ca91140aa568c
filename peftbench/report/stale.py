"""Rows the current profile would not produce: `make report` reads results/ without Snakemake, so a run trained
under an earlier profile (another steps, precision, method hyperparameter, task size, or edited data, method or
task files) would be reported under today's profile. Each stored run's config hash (train.json's provenance) is
set against the one its job would compute now (peftbench.identity.training_run, the job's own computation on the
job's own profile record, peftbench.runspec.training); a run that differs is refused by name. Inside the DAG the
report rule never sees one: Snakemake reruns what changed first."""

from pathlib import Path

from peftbench import config, identity, io, provenance, runspec


def stale_runs(cfg: dict, method_specs: dict, run_dirs, tasks_dir: Path) -> dict[Path, str]:
    """{run folder: why it is stale} for the runs whose train.json names another training than the profile
    `cfg` gives now. A run whose identity cannot be computed here (its data split gone) is left to the others'
    checks, not refused."""
    out, trainings = {}, {}
    for run in map(Path, run_dirs):
        train_json = run / "train.json"
        if not train_json.is_file():
            continue
        try:
            stored = io.read_json(train_json)
            task = (stored.get("trained_on") or {}).get("union") or stored["task"]  # a union member: the union's
            key = (stored["method"], task)
            if key not in trainings:  # the seeds of one (method, task) share all but the seed
                trainings[key] = training(cfg, method_specs[stored["method"]], task, tasks_dir)
            record, settings, files = trainings[key]
            spec = method_specs[stored["method"]]
            run_id = identity.run_identity(record, task, spec, settings, int(stored["seed"]), files)
            expected, found = provenance.config_hash(run_id), stored["provenance"]["config_hash"]
        except (OSError, ValueError, KeyError, TypeError, config.ConfigError):
            continue
        if found != expected:
            out[run] = (
                f"stale: trained under another profile or other inputs (config hash {found}; the current profile and "
                f"files give {expected}): `snakemake --cores all` reruns it"
            )
    return out


def training(cfg: dict, spec: dict, task: str, tasks_dir: Path) -> tuple[dict, dict, dict]:
    """(the job's profile record, its training settings, its file hashes), as the fine-tuning job computes them."""
    data_dir = Path(cfg["results"]) / "data" / task
    members = [config.load_task(t, tasks_dir)["dir"] for t in config.union_members(cfg, task)]
    with open(data_dir / "train.jsonl") as f:
        n_train = sum(1 for line in f if line.strip())
    record = runspec.training(cfg, spec, task)
    settings, files, _ = identity.training_run(record, task, spec, 0, data_dir, members, n_train)
    return record, settings, files
