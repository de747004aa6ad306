#!/bin/sh
# After run_main.sh: cross-entropy ablation (HDFS 1%), then the recipe with ~8 validations per
# run (eval_every = total/8; run_main.sh validated once per epoch) on BGL 10% and HDFS 10%.
cd "$(dirname "$0")/../.."
while kill -0 "$(cat bench/training/logs/main.pid)" 2>/dev/null; do sleep 10; done
PY=.venv/bin/python
R=bench/training/results
$PY bench/training/run_table.py --dataset hdfs --budgets 0.01 --samples 0 1 2 \
    --losses ce --results $R/hdfs.jsonl --dataset-cache /tmp/ds_hdfs.pkl
$PY bench/training/run_table.py --dataset bgl_templated --budgets 0.1 --samples 0 1 2 \
    --losses focal --tag _eval8 --results $R/bgl.jsonl --dataset-cache /tmp/ds_bgl_templated.pkl
$PY bench/training/run_table.py --dataset hdfs --budgets 0.1 --samples 0 1 2 \
    --losses focal --tag _eval8 --results $R/hdfs.jsonl --dataset-cache /tmp/ds_hdfs.pkl
