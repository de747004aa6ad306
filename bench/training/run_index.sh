#!/bin/sh
# The acceptance tables again with sequence_ids="index" (the default since it was measured to
# help), tagged _index. One model at a time (2 shared CPU cores); HDFS first, then BGL.
set -e
cd "$(dirname "$0")/../.."
PY=".venv/bin/python bench/training/run_table.py"
R=bench/training/results
H="--dataset hdfs --dataset-cache /tmp/ds_hdfs.pkl --results $R/hdfs.jsonl --tag _index"
B="--dataset bgl_templated --dataset-cache /tmp/ds_bgl_templated.pkl --results $R/bgl.jsonl --tag _index"
$PY $H --budgets 0.01 --samples 0 1 2 --losses focal ce
$PY $H --budgets 0.1 --samples 0 1 2 --losses focal ce
$PY $B --budgets 0.1 --samples 0 1 2 --losses focal ce
$PY $H --budgets 1.0 --samples 0 --losses focal ce
$PY $B --budgets 1.0 --samples 0 --losses focal
