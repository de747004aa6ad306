"""Which trained members form the served ensemble: chosen on validation, never on test."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import numpy as np

from training.metrics import best_threshold

EnsembleSelection = Literal["all", "validation"]


def select_members(val_scores: Sequence[np.ndarray], val_labels: np.ndarray,
                   selection: EnsembleSelection = "validation") -> tuple[int, ...]:
    """Indices of the members to serve. ``validation``: the subset whose mean probability
    has the best validation F1 (at its own best threshold), ties to the larger subset, then
    to the earlier seeds; a member whose run got stuck (BGL: validation F1 0.64 against 0.85
    for its siblings) is left out instead of dragging the mean down. ``all``: every member."""
    n = len(val_scores)
    if selection == "all" or n == 1:
        return tuple(range(n))
    best: tuple[int, ...] = ()
    best_key: tuple[float, int] = (-1.0, 0)
    for size in range(n, 0, -1):  # larger subsets first: they win ties
        for subset in itertools.combinations(range(n), size):
            mean = np.mean([val_scores[i] for i in subset], axis=0)
            key = (round(best_threshold(mean, val_labels)[1], 9), size)
            if key > best_key:
                best, best_key = subset, key
    return best
