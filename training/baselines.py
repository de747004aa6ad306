"""Simple detectors scored in the same harness, splits and label samples as the model
(Le & Zhang 2022; Landauer et al. 2023 show they score high on these benchmarks).

* :class:`UnseenTemplateDetector`: a window's score is the number of distinct templates in it
  that the reference windows never contain. The reference is, by choice, either *all* training
  windows (``reference="train"``: unlabelled logs cost nothing, so this is the fair default) or
  only the labelled ones (``"labelled"``). Anomalous when the score reaches a threshold chosen
  on validation (typically 1).
* :class:`CountsLogisticRegression`: scikit-learn logistic regression on template-count
  vectors of the labelled windows (one column per template of the frozen table plus one for
  templates outside it); probability threshold chosen on validation. ``transform`` maps the
  counts first: ``raw`` (the plain baseline), ``log1p`` or ``binary`` (presence). Raw counts
  of 100-event BGL windows give a validation threshold that flags every test window, so
  :func:`best_logreg` also fits all three and keeps the one with the best *validation* F1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import numpy as np
from sklearn.linear_model import LogisticRegression

from logprompt.datasets import LabelledWindow


class UnseenTemplateDetector:
    def __init__(self, reference: Iterable[LabelledWindow]) -> None:
        self.known: set[str] = set()
        for w in reference:
            self.known.update(w.window.template_ids)

    def score(self, windows: Sequence[LabelledWindow]) -> np.ndarray:
        return np.array(
            [len(set(w.window.template_ids) - self.known) for w in windows], dtype=np.float64)


Transform = Literal["raw", "log1p", "binary"]
TRANSFORMS: tuple[Transform, ...] = ("raw", "log1p", "binary")


class CountsLogisticRegression:
    def __init__(self, template_ids: Sequence[str], c: float = 1.0,
                 transform: Transform = "raw") -> None:
        self.columns = {tid: i for i, tid in enumerate(dict.fromkeys(template_ids))}
        self.c = c
        self.transform = transform
        self.model: LogisticRegression | None = None
        self.constant = 0.0

    def features(self, windows: Sequence[LabelledWindow]) -> np.ndarray:
        x = np.zeros((len(windows), len(self.columns) + 1))
        other = len(self.columns)
        for row, w in enumerate(windows):
            for tid in w.window.template_ids:
                x[row, self.columns.get(tid, other)] += 1
        if self.transform == "log1p":
            return np.log1p(x)
        if self.transform == "binary":
            return (x > 0).astype(np.float64)
        return x

    def fit(self, windows: Sequence[LabelledWindow]) -> CountsLogisticRegression:
        y = np.array([w.label for w in windows])
        if len(set(y.tolist())) < 2:  # one class only: a constant detector
            self.model, self.constant = None, float(y[0]) if len(y) else 0.0
            return self
        self.model = LogisticRegression(C=self.c, max_iter=5000)
        self.model.fit(self.features(windows), y)
        return self

    def score(self, windows: Sequence[LabelledWindow]) -> np.ndarray:
        if self.model is None:
            return np.full(len(windows), self.constant)
        return self.model.predict_proba(self.features(windows))[:, 1]


def best_logreg(template_ids: Sequence[str], labelled: Sequence[LabelledWindow],
                val: Sequence[LabelledWindow],
                val_f1: Callable[[np.ndarray], float]) -> CountsLogisticRegression:
    """The count transform whose model has the best validation F1 (``val_f1(scores)``)."""
    best: tuple[float, CountsLogisticRegression] | None = None
    for transform in TRANSFORMS:
        model = CountsLogisticRegression(template_ids, transform=transform).fit(labelled)
        f1 = val_f1(model.score(val))
        if best is None or f1 > best[0]:
            best = (f1, model)
    assert best is not None
    return best[1]
