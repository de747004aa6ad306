"""Test F1 of the mean probability of several runs (an ensemble measured offline): each
report directory's ``scores.npz`` (from run_table.py), threshold from validation.

    .venv/bin/python bench/training/ensemble_scores.py bench/training/results/reports/RUN ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from training.metrics import best_threshold, binary_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", type=Path, nargs="+")
    args = parser.parse_args()
    runs = [np.load(path / "scores.npz") for path in args.reports]
    val_labels, test_labels = runs[0]["val_labels"], runs[0]["test_labels"]
    for run in runs[1:]:  # the same windows in the same order, or the mean means nothing
        assert np.array_equal(run["val_labels"], val_labels)
        assert np.array_equal(run["test_labels"], test_labels)
    members = [(path.name, run["val_scores"], run["test_scores"])
               for path, run in zip(args.reports, runs, strict=True)]
    members.append(("mean probability", np.mean([m[1] for m in members], axis=0),
                    np.mean([m[2] for m in members], axis=0)))
    print("| scores | val F1 | test F1 | test PR-AUC |\n| --- | --- | --- | --- |")
    for name, val, test in members:
        threshold, val_f1 = best_threshold(val, val_labels)
        metrics = binary_metrics(test, test_labels, threshold)
        print(f"| {name} | {val_f1:.3f} | {metrics['f1']:.3f} | {metrics['pr_auc']:.3f} |")


if __name__ == "__main__":
    main()
