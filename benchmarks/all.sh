#!/usr/bin/env bash
# Every benchmark in one command, on this machine, results in benchmarks/results/ (each file names
# its CPU). Run it on an otherwise idle machine: about 15 minutes on 2 cores, most of it the
# training comparison. Optional: TFLITE_PYTHON=/path/to/python with runtime[tflite] installed
# adds tflite-runtime to the interpreter table.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
tflite=()
[ -n "${TFLITE_PYTHON:-}" ] && tflite=(--tflite-python "$TFLITE_PYTHON")

"$python" benchmarks/run.py "${tflite[@]}"             # interpreters side by side, memory, cold start
"$python" benchmarks/int8_vs_float.py                  # int8 against float32, delegate partitions
"$python" benchmarks/end_to_end.py                     # file to digit, against the old preprocessing
"$python" benchmarks/preprocess_quality.py             # ... and its quality, against the old one
"$python" benchmarks/input_forms.py --derive           # every input form, non-digits, the "not sure" rule
"$python" benchmarks/serve_load.py                     # serve under load, memory over a soak
"$python" benchmarks/training.py                       # training: profile, previous vs current defaults
