"""Few-shot labelled samples and prompt inputs for the model, with duplicate removal.

Label budget (what "N labelled windows" means here): a count or a fraction of the *training*
split's windows, drawn reproducibly with ``numpy.random.default_rng(label_sample)`` from the
training split only; validation and test windows are never candidates. How they are drawn
(``LabelBudget.selection``):

* ``distinct`` (label-free): draw N *distinct* windows (distinct sequences of template
  ids), one representative each, uniformly. A person labelling logs would not label forty
  copies of the same window; anomalies are more varied than normal windows, so distinct
  windows hold more of them (HDFS train: 3.4% of windows, 8.4% of distinct windows) without
  looking at a single label. Only the N drawn windows are labelled and used.
* ``cover`` (default, label-free): first one distinct window of each distinct *set* of
  templates (the kinds of session the logs hold: a session that only allocates a block is
  another kind than one that writes it), in random order, then distinct windows uniformly as
  ``distinct`` does.
  On HDFS train 1,364 distinct windows fall into 37 template sets, 27 of them anomalous only,
  so 1% (69 windows) covers every kind instead of drawing 69 of the 1,364 at random.
* ``stratified``: keep the split's anomaly rate exactly (``round(N * rate)`` anomalies, at
  least ``min_anomalies`` when the split has any). Uses the labels to choose: an upper bound.
* ``random``: N windows uniformly.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from logprompt.datasets import LabelledWindow
from logprompt.prompts import EncodedPrompt, PromptEncoder


class LabelBudget(BaseModel):
    """How many training windows get labels: ``count`` or ``fraction`` (exactly one)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    count: int | None = None
    fraction: float | None = 0.1
    selection: Literal["distinct", "cover", "stratified", "random"] = "cover"
    min_anomalies: int = 1  # stratified only

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


def sample_labelled(labels: Sequence[int], budget: LabelBudget, label_sample: int,
                    keys: Sequence[Hashable] | None = None) -> list[int]:
    """Indices (sorted) into the training windows that get labels, for this label sample.
    ``keys`` (one per window: its template-id sequence) is needed by ``distinct``."""
    y = np.asarray(labels, dtype=np.int64)
    n = budget.size(len(y))
    rng = np.random.default_rng(label_sample)
    if n >= len(y):
        return list(range(len(y)))
    if budget.selection in ("distinct", "cover"):
        if keys is None:
            raise ValueError(f"{budget.selection} selection needs the windows' keys")
        first: dict[Hashable, int] = {}
        for i, key in enumerate(keys):
            first.setdefault(key, i)
        reps = np.array(list(first.values()))
        if n >= len(reps):  # more labels than distinct windows: all of them, then the rest
            rest = np.setdiff1d(np.arange(len(y)), reps)
            extra = rng.choice(rest, size=n - len(reps), replace=False)
            return sorted(int(i) for i in np.concatenate([reps, extra]))
        if budget.selection == "cover":
            return _cover(reps, [keys[i] for i in reps], n, rng)
        return sorted(int(i) for i in rng.choice(reps, size=n, replace=False))
    if budget.selection == "random":
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


def _cover(reps: np.ndarray, rep_keys: Sequence[Hashable], n: int,
           rng: np.random.Generator) -> list[int]:
    """``n`` (< len(reps)) of the distinct windows ``reps``: one per template set first, then
    distinct windows uniformly."""
    by_set: dict[frozenset[object], list[int]] = {}
    for rep, key in zip(reps.tolist(), rep_keys, strict=True):
        by_set.setdefault(frozenset(key) if isinstance(key, tuple) else frozenset([key]),
                          []).append(rep)
    groups = list(by_set.values())
    order = rng.permutation(len(groups))
    chosen = [groups[g][int(rng.integers(len(groups[g])))] for g in order[:n]]
    rest = np.setdiff1d(reps, chosen)
    chosen += rng.choice(rest, size=n - len(chosen), replace=False).tolist()
    return sorted(int(i) for i in chosen)


def window_keys(windows: Sequence[LabelledWindow]) -> list[tuple[str, ...]]:
    """What makes two windows the same for labelling: their template-id sequence."""
    return [tuple(w.window.template_ids) for w in windows]


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


def distinct_labelled(prompts: Sequence[EncodedPrompt], labels: Sequence[int]
                      ) -> tuple[list[EncodedPrompt], list[int], np.ndarray]:
    """Distinct (prompt, label) pairs of a labelled sample and their weights, normalised to
    mean 1: a batch of distinct pairs, each loss times its weight, estimates the loss over
    the sample with duplicates, at the cost of the distinct prompts only."""
    counts: dict[tuple[EncodedPrompt, int], int] = {}
    for p, y in zip(prompts, labels, strict=True):
        counts[(p, int(y))] = counts.get((p, int(y)), 0) + 1
    pairs = list(counts)
    weights = np.array([counts[k] for k in pairs], dtype=np.float64)
    weights /= weights.mean()
    return [p for p, _ in pairs], [y for _, y in pairs], weights


def describe_sample(labels: Sequence[int], picked: Sequence[int]) -> dict[str, Any]:
    y = np.asarray(labels)[list(picked)]
    return {"windows": len(picked), "anomalous": int(y.sum()), "train_windows": len(labels)}
