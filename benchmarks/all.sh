#!/usr/bin/env bash
# Every benchmark in one command, on this machine, with the comparisons against earlier revisions
# that the committed results hold (read from git: run it in a checkout). Results go to
# benchmarks/results/, replacing the files there (int8_vs_float.py names its files by CPU, so runs
# on different CPUs sit side by side). Run it on an otherwise idle machine: more than 20 minutes on
# the docs' 2-core Xeon, most of it the training comparison (its eight training runs alone took 20
# minutes there: benchmarks/results/training.json). Optional: TFLITE_PYTHON=/path/to/python with
# runtime[tflite] installed adds tflite-runtime to the interpreter table.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
tflite=()
[ -n "${TFLITE_PYTHON:-}" ] && tflite=(--tflite-python "$TFLITE_PYTHON")

"$python" benchmarks/run.py "${tflite[@]}"             # interpreters side by side, memory, cold start
"$python" benchmarks/int8_vs_float.py                  # int8 against float32, delegate partitions
"$python" benchmarks/one_partition.py                  # the int8 conv2d graph as one XNNPACK partition
"$python" benchmarks/end_to_end.py                     # file to digit, against the old preprocessing
"$python" benchmarks/end_to_end.py --baseline 49ed63f --out benchmarks/results/end_to_end-vs-49ed63f
"$python" benchmarks/preprocess_quality.py             # ... and its quality, against the old one
"$python" benchmarks/input_forms.py --derive --baseline 49ed63f --baseline 5399071   # every input form, the "not sure" rule
"$python" benchmarks/handwriting.py --bundle before=4b50711:runtime/mnist_edge_runtime/bundle \
    --bundle previous=d8c19e1:runtime/mnist_edge_runtime/bundle \
    --bundle after=runtime/mnist_edge_runtime/bundle   # held-out handwriting, letters, shapes: MNIST-only models, the previous handwriting models and today's
# Training's flagged 1s on validation, the five bundles kept (printed, into a temporary folder: the
# committed results also hold candidates whose bundles were not kept).
"$python" benchmarks/flagged_ones.py --bundle previous=135bc34:export --bundle extra-flags-7=ce60d6d:export \
    --bundle chosen=d8c19e1:export --bundle conv2d-pen-30=d14b2a2:export --bundle long-flags=export --out "$(mktemp -d)"
"$python" benchmarks/bundle_tables.py                  # the committed bundle's tables, from its manifest
"$python" benchmarks/serve_load.py                     # serve under load, memory over a soak
"$python" benchmarks/serve_hostile.py --baseline 44d6141   # serve under hostile clients, against the server before its limits
"$python" benchmarks/training.py                       # training: profile, previous vs current defaults
"$python" benchmarks/pipeline_time.py --against 5399071  # the whole pipeline against the MNIST-only one
# The learning loop needs trained models: a pipeline into a temporary folder first.
learn=$(mktemp -d) && (cd "$learn" && "$python" -m mnist_edge pipeline >/dev/null)
"$python" benchmarks/learning_loop.py --runs "$learn/runs" --bundle "$learn/export"   # corrections -> a better model
rm -rf "$learn"
