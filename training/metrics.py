"""Binary detection metrics and the validation-chosen threshold."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) maximising F1 of ``scores >= threshold`` on these (validation) labels.
    Ties go to the highest threshold (fewest alerts)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if labels.sum() == 0 or len(scores) == 0:
        return float(np.max(scores, initial=0.0)) + 1e-9, 0.0
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    tp = np.cumsum(y)
    fp = np.cumsum(1 - y)
    # Only the last index of a run of equal scores is a valid cut.
    last = np.r_[s[1:] != s[:-1], True]
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / labels.sum()
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(
        precision + recall, 1e-12), 0.0)
    f1 = np.where(last, f1, -1.0)
    best = int(np.argmax(f1))  # first max = highest threshold
    return float(s[best]), float(f1[best])


def binary_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, Any]:
    """P, R, F1, specificity, PR-AUC (average precision) and the confusion matrix."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    pred = scores >= threshold
    tp = int(np.sum(pred & (labels == 1)))
    fp = int(np.sum(pred & (labels == 0)))
    fn = int(np.sum(~pred & (labels == 1)))
    tn = int(np.sum(~pred & (labels == 0)))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    spec = tn / (tn + fp) if tn + fp else 0.0
    ap = float(average_precision_score(labels, scores)) if 0 < labels.sum() < len(labels) else 0.0
    return {
        "precision": p, "recall": r, "f1": f1, "specificity": spec, "pr_auc": ap,
        "threshold": float(threshold), "n": int(len(labels)), "positives": int(labels.sum()),
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
    }
