"""Few-shot labelled samples and prompt inputs for the model, with duplicate removal.

Label budget (what "N labelled windows" means here): a count or a fraction of the *training*
split's windows, drawn reproducibly with ``numpy.random.default_rng(label_sample)`` from the
training split only; validation and test windows are never candidates. With ``stratified``
(the default) the draw keeps the training split's anomaly rate exactly (``round(n * rate)``
anomalies) and holds at least ``min_anomalies`` anomalies when the split has them, so a 1%
budget is not a sample without a single anomaly; the rest are drawn from normal windows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from logprompt.datasets import LabelledWindow
from logprompt.prompts import EncodedPrompt, PromptEncoder


class LabelBudget(BaseModel):
    """How many training windows get labels: ``count`` or ``fraction`` (exactly one)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    count: int | None = None
    fraction: float | None = 0.1
    stratified: bool = True
    min_anomalies: int = 1

    @model_validator(mode="after")
    def _one(self) -> LabelBudget:
        if (self.count is None) == (self.fraction is None):
            raise ValueError("give exactly one of count and fraction")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise ValueError("fraction must be in (0, 1]")
        if self.count is not None and self.count < 1:
            raise ValueError("count must be >= 1")
        return self

    def size(self, n_train: int) -> int:
        if self.count is not None:
            return min(self.count, n_train)
        assert self.fraction is not None
        return max(1, min(n_train, round(self.fraction * n_train)))


def sample_labelled(labels: Sequence[int], budget: LabelBudget, label_sample: int) -> list[int]:
    """Indices (sorted) into the training windows that get labels, for this label sample."""
    y = np.asarray(labels, dtype=np.int64)
    n = budget.size(len(y))
    rng = np.random.default_rng(label_sample)
    if n >= len(y):
        return list(range(len(y)))
    if not budget.stratified:
        return sorted(int(i) for i in rng.choice(len(y), size=n, replace=False))
    anomalies = np.flatnonzero(y == 1)
    normals = np.flatnonzero(y == 0)
    n_anom = round(n * len(anomalies) / len(y))
    n_anom = max(n_anom, min(budget.min_anomalies, len(anomalies), n))
    n_anom = min(n_anom, len(anomalies))
    n_norm = min(n - n_anom, len(normals))
    picked = np.concatenate([
        rng.choice(anomalies, size=n_anom, replace=False),
        rng.choice(normals, size=n_norm, replace=False),
    ])
    return sorted(int(i) for i in picked)


def encode_windows(encoder: PromptEncoder, windows: Sequence[LabelledWindow]
                   ) -> list[EncodedPrompt]:
    return [encoder.encode(w.window.templates, w.window.template_ids) for w in windows]


def distinct(prompts: Sequence[EncodedPrompt]) -> tuple[list[EncodedPrompt], np.ndarray]:
    """(distinct prompts, index of each input prompt into them): most windows are exact
    duplicates, so each distinct prompt is scored once."""
    index_of: dict[tuple[tuple[int, ...], tuple[int, ...]], int] = {}
    unique: list[EncodedPrompt] = []
    inverse = np.empty(len(prompts), dtype=np.int64)
    for i, p in enumerate(prompts):
        key = (p.input_ids, p.token_type_ids)
        j = index_of.get(key)
        if j is None:
            j = index_of[key] = len(unique)
            unique.append(p)
        inverse[i] = j
    return unique, inverse


def ceil_div(a: int, b: int) -> int:
    return math.ceil(a / b)


def describe_sample(labels: Sequence[int], picked: Sequence[int]) -> dict[str, Any]:
    y = np.asarray(labels)[list(picked)]
    return {"windows": len(picked), "anomalous": int(y.sum()), "train_windows": len(labels)}
