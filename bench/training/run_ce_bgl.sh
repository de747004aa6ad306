#!/bin/sh
# Cross-entropy ablation on BGL 10% (after run_next.sh), default recipe otherwise.
cd "$(dirname "$0")/../.."
while kill -0 "$(cat bench/training/logs/next.pid)" 2>/dev/null; do sleep 10; done
.venv/bin/python bench/training/run_table.py --dataset bgl_templated --budgets 0.1 \
    --samples 0 1 2 --losses ce --tag _eval8 --results bench/training/results/bgl.jsonl \
    --dataset-cache /tmp/ds_bgl_templated.pkl
