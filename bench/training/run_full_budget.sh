#!/bin/sh
# 100% of the training labels on HDFS (after run_ce_bgl.sh). Every label sample is the whole
# training split at 100%, and the training seed is fixed, so one sample stands for all three.
cd "$(dirname "$0")/../.."
while kill -0 "$(cat bench/training/logs/ce_bgl.pid)" 2>/dev/null; do sleep 10; done
.venv/bin/python bench/training/run_table.py --dataset hdfs --budgets 1.0 --samples 0 \
    --losses focal --tag _eval8 --results bench/training/results/hdfs.jsonl \
    --dataset-cache /tmp/ds_hdfs.pkl
.venv/bin/python bench/training/run_table.py --dataset bgl_templated --budgets 1.0 --samples 0 \
    --losses focal --tag _eval8 --results bench/training/results/bgl.jsonl \
    --dataset-cache /tmp/ds_bgl_templated.pkl
# Cross-entropy at HDFS 10% (appended while the machine was quieter).
.venv/bin/python bench/training/run_table.py --dataset hdfs --budgets 0.1 --samples 0 1 2 \
    --losses ce --tag _eval8 --results bench/training/results/hdfs.jsonl \
    --dataset-cache /tmp/ds_hdfs.pkl
