"""Scoring windows: the model interface, an LRU cache of scores, and a micro-batching worker.

The worker is one thread: the consumer loop submits closed windows and goes on parsing while
the model runs (ONNX Runtime releases the GIL). It forms batches across partitions and keys
of at most ``max_batch_size`` prompts, waiting at most ``max_batch_wait_ms`` for a batch to
fill; a commit asks it to flush at once (:meth:`ScoringWorker.drain`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from logprompt.parsing import TemplateTable
from logprompt.pipeline import PipelineConfig
from logprompt.prompts import EncodedPrompt, PromptEncoder
from logprompt.windows import Window
from streamer.exceptions import ScoringError
from streamer.metrics import StreamerMetrics


class Scorer(Protocol):
    """What the streamer needs from a loaded model bundle (``logprompt.bundle.BundleScorer``)."""

    @property
    def manifest(self) -> Any: ...
    @property
    def pipeline_config(self) -> PipelineConfig: ...
    @property
    def table(self) -> TemplateTable: ...
    @property
    def encoder(self) -> PromptEncoder: ...
    @property
    def threshold(self) -> float: ...
    @property
    def model_version(self) -> str: ...
    @property
    def providers(self) -> Sequence[str]: ...

    def score(self, prompts: Sequence[EncodedPrompt]) -> np.ndarray: ...

    def score_windows(self, windows: Sequence[Window]) -> np.ndarray: ...


class ThresholdOverride:
    """A scorer with another threshold (``threshold_override``); everything else delegated."""

    def __init__(self, scorer: Scorer, threshold: float) -> None:
        self._scorer = scorer
        self._threshold = threshold

    @property
    def threshold(self) -> float:
        return self._threshold

    def __getattr__(self, name: str) -> Any:
        return getattr(self._scorer, name)


class ScoreCache:
    """Bounded LRU map from an encoded prompt to its score. Identical windows (same templates
    in the same order) are common in logs, and their prompts are equal, so is their score."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._data: OrderedDict[EncodedPrompt, float] = OrderedDict()
        self.hits = 0
        self.lookups = 0

    def get(self, prompt: EncodedPrompt) -> float | None:
        self.lookups += 1
        score = self._data.get(prompt)
        if score is not None:
            self.hits += 1
            self._data.move_to_end(prompt)
        return score

    def put(self, prompt: EncodedPrompt, score: float) -> None:
        if self.max_size <= 0:
            return
        self._data[prompt] = score
        self._data.move_to_end(prompt)
        while len(self._data) > self.max_size:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()

    @property
    def hit_rate(self) -> float:
        return self.hits / self.lookups if self.lookups else 0.0

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True, slots=True)
class ScoredWindow:
    window: Window
    score: float
    cached: bool


class ScoringWorker:
    """Scores submitted windows on a thread; results come back in submission order."""

    def __init__(self, scorer: Scorer, max_batch_size: int, max_batch_wait_ms: float,
                 cache_size: int, metrics: StreamerMetrics) -> None:
        self.scorer = scorer
        self.max_batch_size = max(1, max_batch_size)
        self.max_wait_s = max_batch_wait_ms / 1000.0
        self.cache = ScoreCache(cache_size)
        self.metrics = metrics
        self._pending: deque[tuple[float, Window]] = deque()  # (submitted at, window)
        self._done: deque[ScoredWindow] = deque()
        self._cond = threading.Condition()
        self._flush = False
        self._stop = False
        self._error: BaseException | None = None
        self._busy = 0  # windows taken from _pending, not yet in _done
        self._thread = threading.Thread(target=self._run, name="scoring", daemon=True)

    # -- consumer-loop side -------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    @property
    def inflight(self) -> int:
        with self._cond:
            return len(self._pending) + self._busy + len(self._done)

    def submit(self, windows: Sequence[Window]) -> None:
        if not windows:
            return
        now = time.monotonic()
        with self._cond:
            self._pending.extend((now, w) for w in windows)
            self._cond.notify_all()

    def collect(self) -> list[ScoredWindow]:
        """Scored windows so far (non-blocking). Raises the worker's error if it failed."""
        with self._cond:
            self._raise_if_failed()
            out = list(self._done)
            self._done.clear()
            return out

    def drain(self, timeout_s: float) -> list[ScoredWindow]:
        """Score everything submitted now (no batch wait) and return all results."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._flush = True
            self._cond.notify_all()
            while self._pending or self._busy:
                self._raise_if_failed()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ScoringError(f"scoring did not finish within {timeout_s:.1f}s "
                                       f"({len(self._pending) + self._busy} windows left)")
                self._cond.wait(min(left, 0.05))
            self._flush = False
            self._raise_if_failed()
            out = list(self._done)
            self._done.clear()
            return out

    def discard(self) -> None:
        """Forget everything submitted (the transaction that would carry it was aborted)."""
        with self._cond:
            self._pending.clear()
            while self._busy:
                self._cond.wait(0.05)
            self._done.clear()

    def swap_scorer(self, scorer: Scorer) -> None:
        """Serve another model from now on; call with nothing in flight. The cache is emptied
        (its scores belong to the old model)."""
        with self._cond:
            if self._pending or self._busy or self._done:
                raise RuntimeError("swap_scorer needs an idle worker; drain first")
            self.scorer = scorer
            self.cache.clear()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise ScoringError(f"the scoring thread failed: {self._error!r}") from self._error

    # -- worker side --------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stop:
                    self._cond.wait(0.1)
                if self._stop:
                    return
                # Wait for a full batch, the oldest window's deadline, or a drain.
                deadline = self._pending[0][0] + self.max_wait_s
                while (len(self._pending) < self.max_batch_size and not self._flush
                       and not self._stop and time.monotonic() < deadline):
                    self._cond.wait(max(0.0, deadline - time.monotonic()))
                n = min(len(self._pending), self.max_batch_size)
                batch = [self._pending.popleft()[1] for _ in range(n)]
                self._busy = n
                scorer = self.scorer
            try:
                scored = self._score(scorer, batch)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer loop
                with self._cond:
                    self._error = exc
                    self._busy = 0
                    self._cond.notify_all()
                return
            with self._cond:
                self._done.extend(scored)
                self._busy = 0
                self._cond.notify_all()

    def _score(self, scorer: Scorer, windows: list[Window]) -> list[ScoredWindow]:
        encoder = scorer.encoder
        prompts = [encoder.encode(w.templates, w.template_ids) for w in windows]
        scores: list[float | None] = [self.cache.get(p) for p in prompts]
        # Identical prompts within one batch are scored once.
        misses: dict[EncodedPrompt, list[int]] = {}
        for i, (prompt, score) in enumerate(zip(prompts, scores, strict=True)):
            if score is None:
                misses.setdefault(prompt, []).append(i)
        cached = [s is not None for s in scores]
        if misses:
            unique = list(misses)
            started = time.perf_counter()
            probs = np.asarray(scorer.score(unique), dtype=np.float64).reshape(-1)
            self.metrics.inference_seconds.observe(time.perf_counter() - started)
            self.metrics.batch_size.observe(len(unique))
            if len(probs) != len(unique):
                raise ScoringError(f"the model returned {len(probs)} scores for "
                                   f"{len(unique)} prompts")
            for prompt, prob in zip(unique, probs, strict=True):
                self.cache.put(prompt, float(prob))
                for i in misses[prompt]:
                    scores[i] = float(prob)
        hits = sum(cached)
        self.metrics.windows_scored.inc(len(windows))
        if hits:
            self.metrics.cache_hits.inc(hits)
        return [ScoredWindow(w, float(s), c)  # type: ignore[arg-type]
                for w, s, c in zip(windows, scores, cached, strict=True)]
