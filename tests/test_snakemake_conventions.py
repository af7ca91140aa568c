"""Snakemake as its users expect (issue 29, item 5): one conda environment for every rule that runs code
(`--sdm conda`), a container recipe (`--sdm apptainer`), `snakemake --lint` clean, the rich logger.
Neither conda nor apptainer exists on this project's machines: what can be checked here is that the environment
file installs requirements.txt's pins, that each rule names it, that its post-deploy script installs this checkout,
and that the lint finds nothing."""

import os
import re
import stat
import subprocess
import sys

import yaml

from peftbench.paths import ROOT

ENVS = ROOT / "workflow" / "envs"
ENV_FILE = ENVS / "peftbench.yaml"
POST_DEPLOY = ENVS / "peftbench.post-deploy.sh"
SNAKEMAKE_ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def requirement_lines(path):
    return [line.split("#")[0].strip() for line in path.read_text().splitlines() if line.split("#")[0].strip()]


def test_the_conda_env_installs_requirements_txt_pins_and_the_python_of_environment_yml():
    env = yaml.safe_load(ENV_FILE.read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip == requirement_lines(ROOT / "requirements.txt"), (
        "workflow/envs/peftbench.yaml's pip list must be requirements.txt's pins, in order"
    )
    python = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python=")]
    conda_yml = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert python == [d for d in conda_yml["dependencies"] if isinstance(d, str) and d.startswith("python=")]
    assert env["channels"] == conda_yml["channels"]


def rule_blocks():
    """{(file, rule): text} of every rule, checkpoint and `use rule` in workflow/rules/*.smk."""
    blocks = {}
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        parts = re.split(r"(?m)^(?=(?:rule|checkpoint) \w+:|use rule )", smk.read_text())
        for part in parts[1:]:
            name = re.match(r"(?:use )?(?:rule|checkpoint) (\w+)", part).group(1)
            blocks[(smk.name, name)] = part
    return blocks


def test_every_rule_that_runs_code_names_the_one_conda_env():
    blocks = rule_blocks()
    runs_code = {k: b for k, b in blocks.items() if re.search(r"(?m)^    (script|shell|run):", b)}
    assert len(runs_code) >= 17, sorted(runs_code)
    missing = [k for k, b in runs_code.items() if "    conda: CONDA_ENV\n" not in b]
    assert not missing, f"rules without `conda: CONDA_ENV`: {missing}"
    common = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    relative = re.search(r'^CONDA_ENV = "(.+)"$', common, re.M).group(1)
    assert (ROOT / "workflow" / "rules" / relative).resolve() == ENV_FILE.resolve()


def test_the_post_deploy_script_installs_this_checkout_and_the_offline_data(tmp_path):
    """Run with a stand-in `python` that records its arguments (no conda here): an editable install of the
    checkout that PEFTBENCH_CODE names, without dependencies (the env file has them), then the data packages."""
    assert POST_DEPLOY.stat().st_mode & stat.S_IXUSR and POST_DEPLOY.read_text().startswith("#!/usr/bin/env bash")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/calls\n')
    (fake / "python").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "PEFTBENCH_CODE": str(ROOT)}
    subprocess.run(["bash", str(POST_DEPLOY)], env=env, check=True)
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == [f"-m pip install --no-deps -e {ROOT}", "-m peftbench.registry_data"]
    env.pop("PEFTBENCH_CODE")
    res = subprocess.run(["bash", str(POST_DEPLOY)], env=env, capture_output=True, text=True)
    assert res.returncode != 0 and "PEFTBENCH_CODE" in res.stderr


def test_the_container_recipe_installs_the_pins_and_the_snakefile_names_its_image():
    recipe = (ENVS / "peftbench.def").read_text()
    assert "requirements.txt" in recipe and "requirements-data.txt" in recipe and "PEFTBENCH_CODE" in recipe
    assert re.search(r'(?m)^container: "peftbench\.sif"$', (ROOT / "Snakefile").read_text())
    assert "peftbench.sif" in (ROOT / ".gitignore").read_text().split()


def snakemake(*args):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=ROOT,
        env=SNAKEMAKE_ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_snakemake_lint_is_clean():
    """No remaining lint, on the smoke profile and with the learning-rate search (fairness.smk's rules)."""
    res = snakemake("--lint", "--configfile", "config/smoke.yaml", "config/tuning.yaml")
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "Congratulations, your workflow is in a good condition!" in out, out[-3000:]


def test_the_rich_logger_is_installed_and_accepted():
    """`--logger rich` (snakemake-logger-plugin-rich, pinned): a progress bar per rule with the share done and
    the time elapsed. Not the default: its job table is not Snakemake's (tests/test_workflow.py parses that)."""
    res = snakemake("-n", "--logger", "rich", "--configfile", "config/smoke.yaml")
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert "Job stats" in res.stdout + res.stderr
    assert "logger" not in (ROOT / "profiles" / "default" / "config.yaml").read_text()


def test_a_slurm_profile_lays_over_the_default_and_unlock_needs_no_cores(tmp_path):
    """profiles/slurm* are global profiles on top of profiles/default (issue 29, item 5): Snakemake reads both, and
    the default sets no `cores` (a workflow profile's keys win, so it would cap every SLURM job's threads).
    Without it, `snakemake --unlock` (the README's resume command) must still parse: no thread count of 'all
    cores' is read before a job is made."""
    from conftest import copy_project

    work = copy_project(tmp_path, ("profiles", "workflow", "config", "methods", "tasks"))
    assert "cores" not in yaml.safe_load((ROOT / "profiles/default/config.yaml").read_text())
    run = {"cwd": work, "env": SNAKEMAKE_ENV, "capture_output": True, "text": True, "timeout": 600}
    unlock = subprocess.run([sys.executable, "-m", "snakemake", "--unlock", "--configfile", "config/smoke.yaml"], **run)
    assert unlock.returncode == 0 and "Unlocked working directory" in unlock.stdout + unlock.stderr, unlock.stderr[
        -2000:
    ]
    cmd = [sys.executable, "-m", "snakemake", "-n", "--profile", "profiles/slurm", "--configfile", "config/smoke.yaml"]
    dry = subprocess.run(cmd, **run)
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0, out[-3000:]
    assert "Using profiles profiles/slurm and workflow specific profile profiles/default" in out
