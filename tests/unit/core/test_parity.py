"""Training/serving parity: records fed one at a time with Kafka coordinates, interleaved across
partitions as a consumer sees them, give the same windows, texts and token ids as the batch
loader that training and evaluation use."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from logprompt.datasets import Dataset, load_dataset
from logprompt.pipeline import Pipeline
from logprompt.prompts import PromptEncoder, render_text
from logprompt.records import DecodeError, decode_record
from logprompt.sources import source_keys
from logprompt.windows import Position, Window

from .tokenizer_fixture import tiny_tokenizer


def stream_split(dataset: Dataset, split: str, partitions: int = 3) -> list[Window]:
    """Replay a split as a 3-partition topic keyed by source key: per-key order is kept, the
    partitions interleave round-robin, offsets are per partition."""
    config = dataset.config
    queues: list[list[bytes]] = [[] for _ in range(partitions)]
    for record in dataset.records[split]:  # type: ignore[index]
        try:
            keys = source_keys(decode_record(record.value, config.record), config.source)
        except DecodeError:
            continue
        partition = zlib.crc32(keys[0].encode()) % partitions if keys else 0
        queues[partition].append(record.value)
    pipeline = Pipeline(config, dataset.table)
    windows: list[Window] = []
    cursor = [0] * partitions
    while any(cursor[p] < len(queues[p]) for p in range(partitions)):
        for p in range(partitions):
            if cursor[p] < len(queues[p]):
                value = queues[p][cursor[p]]
                windows += pipeline.process(value, Position("logs", p, cursor[p])).windows
                cursor[p] += 1
    return windows + pipeline.flush()


def assert_parity(dataset: Dataset, split: str) -> None:
    offline = [lw.window for lw in dataset.windows[split]]  # type: ignore[index]
    keys = {w.key for w in offline}
    online = [w for w in stream_split(dataset, split) if w.key in keys]
    by_id = {w.window_id: w for w in offline}
    assert len(online) == len(offline) and set(by_id) == {w.window_id for w in online}
    encoder = PromptEncoder(tiny_tokenizer(), dataset.config.prompt)
    for window in online:
        twin = by_id[window.window_id]
        assert window.template_ids == twin.template_ids
        assert (render_text(window.templates, window.template_ids, dataset.config.prompt)
                == render_text(twin.templates, twin.template_ids, dataset.config.prompt))
        assert (encoder.encode(window.templates, window.template_ids)
                == encoder.encode(twin.templates, twin.template_ids))


def test_parity_on_synthetic_sessions() -> None:
    dataset = load_dataset("synthetic", limit=600)
    assert sum(lw.label for lw in dataset.windows["test"]) > 0
    assert_parity(dataset, "test")


@pytest.mark.datasets
def test_parity_on_hdfs_2k(datasets_root: Path) -> None:
    dataset = load_dataset("hdfs_2k", root=datasets_root)
    assert_parity(dataset, "val")
