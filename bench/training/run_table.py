"""Train and evaluate LogPrompt models and both baselines over label budgets, label samples and
losses on one data set; append one JSON line per run to a results file.

    .venv/bin/python bench/training/run_table.py --dataset hdfs --budgets 0.01 0.1 \
        --samples 0 1 2 --losses focal --results bench/training/results/hdfs.jsonl

Every run: label sample ``s`` of the training split (seed s), model trained with seed 0,
checkpoint and thresholds from validation, test scored once. Reports (JSON, Markdown, PR-curve
PNG) are kept under ``bench/training/results/reports/``; the weights are deleted.
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from logprompt.datasets import Dataset, load_dataset
from training.config import TrainConfig
from training.data import LabelBudget, describe_sample, sample_labelled, window_keys
from training.evaluate import baseline_scores, evaluate
from training.metrics import best_threshold, binary_metrics
from training.train import train

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--budgets", type=float, nargs="+", required=True,
                    help="fractions of the training windows (<= 1) or counts (> 1)")
    ap.add_argument("--samples", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--losses", nargs="+", default=["focal"])
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON",
                    help="extra TrainConfig fields, e.g. train_layers=2 epochs=6")
    ap.add_argument("--tag", default="")
    ap.add_argument("--selection", default=LabelBudget().selection,
                    choices=["distinct", "cover", "stratified", "random"])
    ap.add_argument("--baselines-only", action="store_true",
                    help="no model: baselines on the same samples (cheap)")
    ap.add_argument("--dataset-cache", type=Path, default=None,
                    help="pickle of the loaded data set (made on first use)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    extra = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.set)}

    if args.dataset_cache and args.dataset_cache.exists():
        dataset = pickle.loads(args.dataset_cache.read_bytes())
    else:
        dataset = load_dataset(args.dataset)
        if args.dataset_cache:
            args.dataset_cache.write_bytes(pickle.dumps(dataset))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    reports = HERE / "results" / "reports"
    for budget in args.budgets:
        lb = (LabelBudget(fraction=budget, selection=args.selection) if budget <= 1
              else LabelBudget(count=int(budget), fraction=None, selection=args.selection))
        for loss in args.losses:
            for sample in args.samples:
                name = f"{args.dataset}_{budget:g}_{loss}_s{sample}{args.tag}"
                if args.baselines_only:
                    row = baselines_row(dataset, lb, sample)
                    row |= {"run": name, "tag": args.tag, "dataset": args.dataset,
                            "budget": budget, "loss": "-", "sample": sample}
                    with args.results.open("a") as fh:
                        fh.write(json.dumps(row) + "\n")
                    logging.info("%s: LR %.3f", name, row["results"]["logreg_counts"]["test"]["f1"])
                    continue
                with tempfile.TemporaryDirectory(prefix="lp_") as tmp:
                    config = TrainConfig(
                        dataset=args.dataset, output=Path(tmp) / "ckpt", label_budget=lb,
                        label_sample=sample, loss=loss, resumable=False, progress=False,
                        **extra)
                    t0 = time.perf_counter()
                    ckpt = train(config, dataset)
                    wall = time.perf_counter() - t0
                    report = evaluate(ckpt, reports / name, dataset=dataset)
                    shutil.copy(ckpt / "checkpoint.json", reports / name / "checkpoint.json")
                    # val/test scores and labels: thresholds can be studied without retraining
                    shutil.copy(ckpt / "scores.npz", reports / name / "scores.npz")
                row = {"run": name, "tag": args.tag, "dataset": args.dataset, "budget": budget,
                       "loss": loss, "sample": sample, "train_wall_s": round(wall, 1),
                       "labelled": report["labelled"], "results": report["results"],
                       "timing": report["timing"], "config": json.loads(config.model_dump_json())}
                with args.results.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                r = report["results"]
                logging.info("%s: model F1 %.3f | LR %.3f | unseen %.3f | %.0f s", name,
                             r["prompt_model"]["test"]["f1"], r["logreg_counts"]["test"]["f1"],
                             r["unseen_templates"]["test"]["f1"], wall)


def baselines_row(dataset: Dataset, budget: LabelBudget, sample: int) -> dict[str, Any]:
    train_windows = dataset.windows["train"]
    labels = [w.label for w in train_windows]
    picked = sample_labelled(labels, budget, sample, window_keys(train_windows))
    scores = baseline_scores(dataset, picked)
    results = {}
    for name, s in scores.items():
        y_val = np.array([w.label for w in dataset.windows["val"]])
        y_test = np.array([w.label for w in dataset.windows["test"]])
        thr, val_f1 = best_threshold(s["val"], y_val)
        results[name] = {"val_f1": val_f1, "test": binary_metrics(s["test"], y_test, thr)}
    return {"labelled": describe_sample(labels, picked), "results": results,
            "train_wall_s": 0.0}


if __name__ == "__main__":
    main()
