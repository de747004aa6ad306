"""Per-partition window state and the checkpoint stored in the committed offset.

**Why one pipeline per partition.** Windows are cut per source key. Kafka orders records only
within a partition, so a key whose records spread over several partitions has no defined
order, and its windows would depend on how the partitions interleave in one consumer: neither
reproducible nor movable on a rebalance. The streamer therefore keeps one
:class:`~logprompt.pipeline.Pipeline` per assigned partition, and producers must key records
by source (HDFS: the block id), which puts each source in one partition; a source spread over
partitions gets separate windows per partition. A partition's windows then depend only on
that partition's records, so whoever owns the partition cuts the same windows.

**How open windows survive a crash or a move (no changelog topic).** The committed offset of a
partition *trails*: it is the offset of the oldest record any open window of the partition
still needs (``Windower.oldest_open_positions``), or the next offset when no window is open.
Its metadata carries ``next``, the offset after the last record processed when it was
committed. A new owner (a restart after kill -9, or another consumer) resumes at the committed
offset, rebuilds the open windows from those records, and treats records below ``next`` as a
replay: their windows and dead letters were already committed, so they are suppressed. A
window is attributed to the record whose processing closed it, so "closed before ``next``" is
exact for every close reason. Cost: a replay of at most the open windows' records.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import orjson
from confluent_kafka import TopicPartition

from logprompt.parsing import TemplateMatcher, TemplateTable
from logprompt.pipeline import Pipeline, PipelineConfig

CHECKPOINT_VERSION = 1


def encode_checkpoint(next_offset: int) -> str:
    return orjson.dumps({"v": CHECKPOINT_VERSION, "next": next_offset}).decode()


def decode_checkpoint(metadata: str | None) -> int | None:
    """The ``next`` offset of a committed checkpoint, or None for foreign/absent metadata."""
    if not metadata:
        return None
    try:
        data = orjson.loads(metadata)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("v") != CHECKPOINT_VERSION:
        return None
    value = data.get("next")
    return value if isinstance(value, int) and value >= 0 else None


def new_pipeline(config: PipelineConfig, table: TemplateTable,
                 matcher: TemplateMatcher | None) -> Pipeline:
    """A fresh core Pipeline; partitions share one read-only matcher (and its parse cache)."""
    pipeline = Pipeline(config, table)
    if matcher is not None:
        pipeline.matcher = matcher
    return pipeline


@dataclass
class PartitionState:
    topic: str
    partition: int
    pipeline: Pipeline
    committed_offset: int | None  # what the group last committed (None: nothing yet)
    replay_until: int  # records below this offset were processed and committed before
    next_offset: int | None = None  # offset after the last record processed here
    dirty: bool = False  # processed something since the last commit
    last_input: float = field(default_factory=time.monotonic)

    @property
    def replaying(self) -> bool:
        return self.next_offset is None or self.next_offset < self.replay_until

    def accepts(self, offset: int) -> bool:
        """False for a record already processed (a stale fetch after a rewind)."""
        return self.next_offset is None or offset >= self.next_offset

    def advance(self, offset: int) -> None:
        self.next_offset = offset + 1
        self.dirty = True
        self.last_input = time.monotonic()

    def checkpoint(self) -> TopicPartition | None:
        """The offset to commit (trailing to the oldest open window) with ``next`` in its
        metadata; None when nothing was processed since the last commit."""
        if not self.dirty or self.next_offset is None:
            return None
        oldest = self.pipeline.windower.oldest_open_positions().get(
            (self.topic, self.partition), math.inf)
        offset = int(min(oldest, self.next_offset))
        next_offset = max(self.next_offset, self.replay_until)
        return TopicPartition(self.topic, self.partition, offset,
                              metadata=encode_checkpoint(next_offset))

    def committed(self, offset: int) -> None:
        self.committed_offset = offset
        self.dirty = False
