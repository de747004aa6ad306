#!/bin/sh
# The runs that chose the current default recipe (focal alpha 0.25, 10 epochs, >= 300 steps)
# and measured it, in the order they ran (2026-12-04). One model at a time: 2 shared CPU cores.
# Every --set below is spelled out, so each row reproduces with today's defaults as well.
# Rows: results/hdfs_explore.jsonl, results/bgl_explore.jsonl; reports (with val/test scores)
# under results/reports/<run>/. Table: summarize.py on the two files.
set -e
cd "$(dirname "$0")/../.."
PY=".venv/bin/python bench/training/run_table.py"
R=bench/training/results
H="--dataset hdfs --dataset-cache /tmp/ds_hdfs.pkl --results $R/hdfs_explore.jsonl --samples 0 1 2"
B="--dataset bgl_templated --dataset-cache /tmp/ds_bgl_templated.pkl --results $R/bgl_explore.jsonl --samples 0 1 2"
# HDFS 10%: what 3 epochs / 60 steps left on the table
$PY $H --budgets 0.1 --losses focal --tag _a25 --set focal_alpha=0.25 epochs=3 min_steps=60
$PY $H --budgets 0.1 --losses ce --tag _e10 --set epochs=10 min_steps=60
$PY $H --budgets 0.1 --losses focal --tag _a25e10 --set focal_alpha=0.25 epochs=10 min_steps=60
# HDFS 1%: 69 labelled windows, 5 steps an epoch: min_steps sets the length (300 either way)
$PY $H --budgets 0.01 --losses ce --tag _m300 --set epochs=3 min_steps=300
$PY $H --budgets 0.01 --losses focal --tag _a25m300 --set focal_alpha=0.25 epochs=3 min_steps=300
$PY $H --budgets 0.1 --losses focal --tag _e10 --set focal_alpha=0.75 epochs=10 min_steps=60
# BGL 10%
$PY $B --budgets 0.1 --losses ce --tag _e10 --set epochs=10 min_steps=60
$PY $B --budgets 0.1 --losses focal --tag _a25e10m300 --set focal_alpha=0.25 epochs=10 min_steps=300
# 100% of the labels: every label sample is the same set, so sample 0 only
H1="--dataset hdfs --dataset-cache /tmp/ds_hdfs.pkl --results $R/hdfs_explore.jsonl --samples 0 --budgets 1.0"
$PY $H1 --losses focal --tag _a25e10m300 --set focal_alpha=0.25 epochs=10 min_steps=300
$PY $H1 --losses ce --tag _e10m300 --set epochs=10 min_steps=300
# BGL 10% sample 0, training seeds 1 and 2 (seed 0 is above): what a seed ensemble would add
B0="--dataset bgl_templated --dataset-cache /tmp/ds_bgl_templated.pkl --results $R/bgl_explore.jsonl --budgets 0.1 --losses focal --samples 0"
$PY $B0 --tag _a25e10m300_seed1 --set focal_alpha=0.25 epochs=10 min_steps=300 seed=1
$PY $B0 --tag _a25e10m300_seed2 --set focal_alpha=0.25 epochs=10 min_steps=300 seed=2
# Label-free "cover" selection (one window of each template set first, training/data.py):
# baselines on the same samples, then the default recipe at HDFS 1% and 10%
$PY $H --budgets 0.01 0.1 --selection cover --tag _cover --baselines-only
$PY $B --budgets 0.1 --selection cover --tag _cover --baselines-only
$PY $H --budgets 0.01 0.1 --losses focal --selection cover --tag _cover
$PY $B --budgets 0.1 --losses focal --selection cover --tag _cover
# Training seeds 1 and 2 on the cover samples: the members of the 3-member ensemble (member k
# is the single run with seed k); bench/training/ensemble_scores.py combines them offline
$PY $B --budgets 0.1 --losses focal --selection cover --tag _cover_seed1 --set seed=1
$PY $B --budgets 0.1 --losses focal --selection cover --tag _cover_seed2 --set seed=2
$PY $H --budgets 0.01 0.1 --losses focal --selection cover --tag _cover_seed1 --set seed=1
$PY $H --budgets 0.01 0.1 --losses focal --selection cover --tag _cover_seed2 --set seed=2
# The default recipe itself (cover, 3 members chosen on validation), focal and cross-entropy
$PY $B --budgets 0.1 --losses focal --selection cover --tag _recipe --set ensemble=3 'ensemble_selection="validation"'
$PY $B --budgets 0.1 --losses ce --selection cover --tag _recipe --set ensemble=3 'ensemble_selection="validation"'
$PY $H --budgets 0.1 0.01 --losses ce --selection cover --tag _recipe --set ensemble=3 'ensemble_selection="validation"'
# HDFS 100%: every window labelled (one set for every label sample), so sample 0 only; seed 0
# is the _a25e10m300 row above, seeds 1 and 2 complete the ensemble
H1C="--dataset hdfs --dataset-cache /tmp/ds_hdfs.pkl --results $R/hdfs_explore.jsonl --samples 0 --budgets 1.0 --losses focal --selection cover"
$PY $H1C --tag _cover_seed1 --set seed=1 ensemble=1
$PY $H1C --tag _cover_seed2 --set seed=2 ensemble=1
