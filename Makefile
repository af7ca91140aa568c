# The two commands of the README, and the pieces they are made of.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
SNAKEMAKE := .venv/bin/snakemake --workflow-profile workflow/profiles/default

.PHONY: setup benchmark test report smoke clean
setup:
	bash scripts/setup.sh

benchmark: setup            ## the embedded default: every method on three tasks, then the report
	$(SNAKEMAKE) --cores all

smoke: setup                ## the same DAG on a tiny random model, a few dozen examples
	$(SNAKEMAKE) --cores all --configfile config/smoke.yaml

report: setup               ## rebuild only the report from existing results
	$(SNAKEMAKE) --cores 1 --forcerun summary report

test: setup
	.venv/bin/python -m pytest -q tests

clean:
	rm -rf results/* reports/*.md reports/*.html
