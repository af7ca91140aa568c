#!/usr/bin/env bash
# .venv-interop: AdapterHub `adapters` and Stanford's `pyreft`, in which `python -m peftbench.export` reloads a
# Houlsby or LoReFT export to check its logits (scripts/interop_check.py). A second environment because both
# pin a transformers 4.x and peftbench runs 5.24. Idempotent; `make test` runs it (tests/test_export.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv-interop/.peftbench-setup
want=$(cat requirements-interop.txt | sha1sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
[ -x .venv-interop/bin/python ] || "$PY" -m venv .venv-interop
.venv-interop/bin/pip install -q torch==2.13.0
.venv-interop/bin/pip install -q -r requirements-interop.txt
# pyreft 0.1.0 asks for transformers==4.45.1 and pulls wandb, jupyter, ...; it imports and runs on 4.57 with the
# pins above (scripts/interop_check.py's pyreft check is the proof), so its own requirements are not installed
.venv-interop/bin/pip install -q --no-deps pyreft==0.1.0 pyvene==0.1.8
echo "$want" > "$stamp"
