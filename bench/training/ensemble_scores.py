"""Test F1 of ensembles of runs, measured offline from each report directory's ``scores.npz``
(from run_table.py): the mean probability of all members, and of the members that validation
selects (``training.ensemble.select_members``, what ``TrainConfig.ensemble`` serves); thresholds
from validation. Member k of ``logprompt train --ensemble K`` is the single run with seed
``seed + k`` (tests/unit/training/test_train_e2e.py), so the runs of one label sample with
seeds 0, 1, 2 give the ensemble that training would build.

    .venv/bin/python bench/training/ensemble_scores.py RUN_SEED0,RUN_SEED1,RUN_SEED2 [GROUP ...]

Each argument is one ensemble, its report directories joined by commas (one per label
sample); several are summarised as mean (min-max).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from training.ensemble import select_members
from training.metrics import best_threshold, binary_metrics


def _f1(val: np.ndarray, val_y: np.ndarray, test: np.ndarray, test_y: np.ndarray
        ) -> tuple[float, float, float]:
    threshold, val_f1 = best_threshold(val, val_y)
    metrics = binary_metrics(test, test_y, threshold)
    return val_f1, metrics["f1"], metrics["pr_auc"]


def ensemble_rows(reports: list[Path]) -> list[tuple[str, float, float, float]]:
    runs = [np.load(path / "scores.npz") for path in reports]
    val_y, test_y = runs[0]["val_labels"], runs[0]["test_labels"]
    for run in runs[1:]:  # the same windows in the same order, or the mean means nothing
        assert np.array_equal(run["val_labels"], val_y)
        assert np.array_equal(run["test_labels"], test_y)
    vals, tests = [r["val_scores"] for r in runs], [r["test_scores"] for r in runs]
    rows = [(path.name, *_f1(v, val_y, t, test_y))
            for path, v, t in zip(reports, vals, tests, strict=True)]
    rows.append(("mean probability, all", *_f1(np.mean(vals, axis=0), val_y,
                                                 np.mean(tests, axis=0), test_y)))
    chosen = select_members(vals, val_y)
    rows.append((f"validation-selected {list(chosen)}",
                 *_f1(np.mean([vals[i] for i in chosen], axis=0), val_y,
                      np.mean([tests[i] for i in chosen], axis=0), test_y)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="+", help="report directories joined by commas")
    args = parser.parse_args()
    groups = [[Path(p) for p in group.split(",")] for group in args.groups]
    summary: dict[str, list[float]] = {"single run": [], "all": [], "validation-selected": []}
    for group in groups:
        rows = ensemble_rows(group)
        print("| scores | val F1 | test F1 | test PR-AUC |\n| --- | --- | --- | --- |")
        for name, val_f1, test_f1, pr_auc in rows:
            print(f"| {name} | {val_f1:.3f} | {test_f1:.3f} | {pr_auc:.3f} |")
        print()
        summary["single run"] += [r[2] for r in rows[:-2]]
        summary["all"].append(rows[-2][2])
        summary["validation-selected"].append(rows[-1][2])
    if len(groups) > 1:
        print("| test F1 over the groups | mean (min-max) |\n| --- | --- |")
        for name, values in summary.items():
            print(f"| {name} | {np.mean(values):.3f} ({min(values):.3f}-{max(values):.3f}) |")


if __name__ == "__main__":
    main()
