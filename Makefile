# The two commands of the README, and the pieces they are made of. Snakemake finds profiles/default by
# itself, and the workflow goes offline by itself for an offline profile (peftbench/offline.py).
SNAKEMAKE := .venv/bin/snakemake

.PHONY: setup setup-interop setup-tracking benchmark test test-fast lint report check-report smoke clean
setup:
	bash scripts/setup.sh

setup-interop:              ## .venv-interop: adapters + pyreft, where exports of houlsby / loreft are checked (tests need it)
	bash scripts/setup_interop.sh

setup-tracking: .venv/.peftbench-tracking   ## MLflow's client into .venv: the profile's opt-in tracking.mlflow (tests need it)

.venv/.peftbench-tracking: requirements-tracking.txt .venv/.peftbench-setup
	.venv/bin/pip install -q -r requirements-tracking.txt && touch $@

benchmark: setup            ## the embedded default: every method on three tasks, then the report
	$(SNAKEMAKE) --cores all

smoke: setup                ## the same DAG on a tiny random model, a few dozen examples
	$(SNAKEMAKE) --cores all --configfile config/smoke.yaml

report: .venv/.peftbench-setup   ## rebuild only reports/ from the results there: never trains or evaluates (seconds)
	.venv/bin/python -m peftbench.report $(if $(PROFILE),--configfile $(PROFILE))

.venv/.peftbench-setup: requirements.txt requirements-data.txt pyproject.toml   # set up only when the pins changed
	bash scripts/setup.sh && touch $@

check-report:               ## open reports/report.html in headless Chromium (1400 px); fail on a missing image, nan in a figure or table, an empty table, or one that neither fits nor scrolls
	.venv/bin/python scripts/check_report_browser.py $(or $(REPORT),reports/report.html)

test: setup setup-interop setup-tracking lint            ## lint, then every test (unit tests + the whole DAG on the smoke profile), one worker per core; a file's tests stay on one worker (test_workflow's share one smoke run)
	.venv/bin/python -m pytest -q -n auto --dist loadfile tests

test-fast: setup            ## unit tests only: no Snakemake DAG run (tests marked slow)
	.venv/bin/python -m pytest -q -m "not slow" tests

lint: setup                 ## ruff: lint and format check (configured in pyproject.toml)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

clean:
	rm -rf results/* reports/*.md reports/*.html reports/figures reports/tables
