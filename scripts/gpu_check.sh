#!/usr/bin/env bash
# GPU readiness in one go, under 8 minutes on one GPU with no network once .venv exists: the default profile's DAG
# on the GPU in bf16 at a small budget (config/gpu_check.yaml), this GPU's GEMM rate and the fraction of it that
# training and generation reach (benchmarks/gemm_fraction.py), and the latency overhead at LoRA Table 1's shapes.
# The report, the summary, every run's JSON, the cost CSVs and each step's log land in $OUT.
#
#   bash scripts/gpu_check.sh                                          # on the GPU box
#   DEVICE=cpu PROFILE=config/smoke.yaml bash scripts/gpu_check.sh     # the same steps on a CPU (tests/test_gpu_check.py)
#
# Every step has its own time limit; one that fails or runs out is recorded in $OUT/steps.tsv and the next still
# runs (the report renders what the DAG finished). Exit status: 0 only when every step succeeded.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
PRECISION=${PRECISION:-$([ "$DEVICE" = cuda ] && echo bf16 || echo fp32)}
PROFILE=${PROFILE:-config/gpu_check.yaml}                               # one profile, or several separated by spaces
OUT=${OUT:-gpu_check_out}
VENV=${VENV:-.venv}
CORES=${CORES:-all}
DAG_S=${DAG_S:-330}
GEMM_ARGS=${GEMM_ARGS:---limit-n 8192 --repeats 5}                      # a GPU needs 8192^3 to reach its rate
LATENCY_ARGS=${LATENCY_ARGS:---settings 32x512 16x256 1x128 --repeats 20}  # LoRA Table 1's three settings

[ -x "$VENV/bin/python" ] || bash scripts/setup.sh
PY=$VENV/bin/python
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1  # the DAG sets these itself; the steps after it do not
mkdir -p "$OUT"
: > "$OUT/steps.tsv"
printf 'device: %s\nprecision: %s\n' "$DEVICE" "$PRECISION" > "$OUT/device.yaml"  # last overlay: wins over the profile
read -ra PROFILES <<< "$PROFILE"
PROFILES+=("$OUT/device.yaml")
read -r RESULTS REPORTS MODEL < <("$PY" -c 'import sys; from peftbench import config
c = config.load_profile("config/config.yaml", *sys.argv[1:]); print(c["results"], c["reports"], c["model"]["name"])' \
  "${PROFILES[@]}")

step() {  # name, seconds, command...: run it with a time limit, its output in $OUT/<name>.log
  local name=$1 limit=$2 start=$SECONDS rc
  shift 2
  timeout -s INT -k 30 "$limit" "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - start))" >> "$OUT/steps.tsv"
  echo "gpu_check: $name: exit $rc after $((SECONDS - start)) s ($OUT/$name.log)"
}

command -v nvidia-smi > /dev/null && nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
"$VENV/bin/snakemake" --unlock --configfile "${PROFILES[@]}" > /dev/null 2>&1  # after a killed check
step dag "$DAG_S" "$VENV/bin/snakemake" --cores "$CORES" --keep-going --configfile "${PROFILES[@]}"
step report 60 "$PY" -m peftbench.report "${PROFILES[@]/#/--configfile=}"
# shellcheck disable=SC2086  # the *_ARGS are word lists
step gemm_fraction 120 "$PY" benchmarks/gemm_fraction.py --base "$RESULTS/$MODEL/base_model" --device "$DEVICE" \
  --precision "$PRECISION" --out "$OUT/gemm_fraction.json" $GEMM_ARGS
# shellcheck disable=SC2086
step latency_overhead 90 "$PY" -m peftbench.costs.latency_overhead --device "$DEVICE" --precision "$PRECISION" \
  --csv "$OUT/latency_overhead.csv" $LATENCY_ARGS

[ -d "$REPORTS" ] && cp -r "$REPORTS" "$OUT/report"
if [ -d "$RESULTS" ]; then  # the numbers, not the weights: every JSON, CSV, TSV and log under the results folder
  (cd "$RESULTS" && find . -path ./data -prune -o -path '*/base_model' -prune -o \
    \( -name '*.json' -o -name '*.csv' -o -name '*.tsv' -o -name '*.log' \) -print) |
    while read -r f; do mkdir -p "$OUT/results/$(dirname "$f")" && cp "$RESULTS/$f" "$OUT/results/$f"; done
fi
sed -n '1,20p' "$OUT/gemm_fraction.log"
cut -f2 "$OUT/steps.tsv" | grep -qv '^0$' && { echo "gpu_check: a step failed, see $OUT/steps.tsv"; exit 1; }
echo "gpu_check: every step passed; outputs in $OUT"
