"""The score cache and the micro-batching worker, with the unit-test RuleScorer."""

from __future__ import annotations

import time

import pytest

from logprompt.parsing import TemplateTable
from logprompt.presets import preset
from logprompt.prompts import PromptEncoder
from logprompt.windows import Event, Position, Window
from streamer.exceptions import ScoringError
from streamer.metrics import StreamerMetrics
from streamer.scoring import ScoreCache, ScoringWorker
from streamer.testing import RuleScorer, minilm_tokenizer_json


@pytest.fixture(scope="module")
def scorer() -> RuleScorer:
    config = preset("hdfs")
    encoder = PromptEncoder.from_file(minilm_tokenizer_json(), config.prompt)
    return RuleScorer(config, TemplateTable(templates=("a <*>", "b <*>")), encoder)


def _window(key: str, templates: list[str]) -> Window:
    events = tuple(Event(key, f"{abs(hash(t)) % 10**8:08d}", t, 1.0, Position("t", 0, i), t)
                   for i, t in enumerate(templates))
    return Window(key, events, "flush")


def test_cache_is_a_bounded_lru(scorer: RuleScorer) -> None:
    cache = ScoreCache(2)
    p = [scorer.encoder.encode([t], ["00000001"]) for t in ("alpha", "beta", "gamma")]
    cache.put(p[0], 0.1)
    cache.put(p[1], 0.2)
    assert cache.get(p[0]) == 0.1  # p0 is now the most recent
    cache.put(p[2], 0.3)
    assert cache.get(p[1]) is None and len(cache) == 2
    assert cache.hits == 1 and cache.lookups == 2


def test_worker_batches_caches_and_keeps_order(scorer: RuleScorer) -> None:
    scorer.calls.clear()
    worker = ScoringWorker(scorer, max_batch_size=4, max_batch_wait_ms=50, cache_size=100,
                           metrics=StreamerMetrics())
    worker.start()
    try:
        windows = [_window(f"k{i}", ["open file", f"event {i % 3}"]) for i in range(10)]
        worker.submit(windows)
        out = worker.drain(10)
        assert [s.window for s in out] == windows
        assert all(n <= 4 for n in scorer.calls)
        # Three distinct prompts: everything else is a cache hit or an in-batch duplicate.
        assert sum(scorer.calls) == 3
        expected = scorer.score_windows(windows)
        assert [s.score for s in out] == pytest.approx(list(expected))
        worker.submit(windows[:2])
        again = worker.drain(10)
        assert all(s.cached for s in again)
        assert worker.inflight == 0
    finally:
        worker.stop()


def test_worker_waits_for_a_batch_then_flushes(scorer: RuleScorer) -> None:
    worker = ScoringWorker(scorer, max_batch_size=1000, max_batch_wait_ms=100, cache_size=0,
                           metrics=StreamerMetrics())
    worker.start()
    try:
        worker.submit([_window("k", ["a"])])
        assert worker.collect() == []  # waits up to max_batch_wait_ms for more
        time.sleep(0.3)
        assert len(worker.collect()) == 1
    finally:
        worker.stop()


class _Broken(RuleScorer):
    def score(self, prompts):  # type: ignore[no-untyped-def]
        raise RuntimeError("onnx failed")


def test_worker_error_reaches_the_consumer_loop(scorer: RuleScorer) -> None:
    broken = _Broken(scorer.pipeline_config, scorer.table, scorer.encoder)
    worker = ScoringWorker(broken, 8, 1, 10, StreamerMetrics())
    worker.start()
    try:
        worker.submit([_window("k", ["a"])])
        with pytest.raises(ScoringError, match="onnx failed"):
            worker.drain(5)
    finally:
        worker.stop()
