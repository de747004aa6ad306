#!/bin/sh
# The acceptance tables, one model at a time (2 shared CPU cores). Default recipe throughout.
set -e
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
R=bench/training/results
$PY bench/training/run_table.py --dataset hdfs --budgets 0.01 0.1 --samples 0 1 2 \
    --losses focal --results $R/hdfs.jsonl --dataset-cache /tmp/ds_hdfs.pkl
$PY bench/training/run_table.py --dataset bgl_templated --budgets 0.1 --samples 0 1 2 \
    --losses focal --results $R/bgl.jsonl --dataset-cache /tmp/ds_bgl_templated.pkl
