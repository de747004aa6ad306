"""Per-partition window state and the checkpoint stored in the committed offset.

**Why one pipeline per partition.** Windows are cut per source key. Kafka orders records only
within a partition, so a key whose records spread over several partitions has no defined
order, and its windows would depend on how the partitions interleave in one consumer: neither
reproducible nor movable on a rebalance. The streamer therefore keeps one
:class:`~logprompt.pipeline.Pipeline` per assigned partition, and producers must key records
by source (HDFS: the block id), which puts each source in one partition; a source spread over
partitions gets separate windows per partition. A partition's windows then depend only on
that partition's records, so whoever owns the partition cuts the same windows.

**How open windows survive a crash or a move.** The committed offset of a partition *trails*:
it is the offset of the oldest record any open window of the partition still needs
(``Windower.oldest_open_positions``), or the next offset when no window is open. Its metadata
carries ``next``, the offset after the last record processed when it was committed, and
``wm``, the session watermark. The state topic holds each open key's start offset
(:mod:`streamer.window_state`). A new owner (a restart after kill -9, or another consumer)
resumes at the committed offset and rebuilds exactly the open windows from those records
(events of keys not open at the checkpoint are skipped); records below ``next`` are a replay:
their windows and dead letters were already committed, so they are suppressed. A window is
attributed to the record whose processing closed it, so "closed before ``next``" is exact for
every close reason. Cost: a replay of at most the open windows' records.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
from confluent_kafka import TopicPartition

from logprompt.parsing import TemplateMatcher, TemplateTable
from logprompt.pipeline import Pipeline, PipelineConfig
from logprompt.records import DecodeError
from logprompt.windows import Position, Window, Windower
from streamer.window_state import (
    KeyState,
    ReplayFilter,
    encode_key_state,
    open_starts,
    state_key,
    watermark_time,
)

CHECKPOINT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Checkpoint:
    next_offset: int
    watermark: float | None = None

    def encode(self) -> str:
        return orjson.dumps({"v": CHECKPOINT_VERSION, "next": self.next_offset,
                             "wm": self.watermark}).decode()

    @classmethod
    def decode(cls, metadata: str | None) -> Checkpoint | None:
        """None for absent or foreign metadata (then nothing is suppressed)."""
        if not metadata:
            return None
        try:
            data = orjson.loads(metadata)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict) or data.get("v") != CHECKPOINT_VERSION:
            return None
        nxt, wm = data.get("next"), data.get("wm")
        if not isinstance(nxt, int) or nxt < 0:
            return None
        return cls(nxt, float(wm) if isinstance(wm, int | float) else None)


def new_pipeline(config: PipelineConfig, table: TemplateTable,
                 matcher: TemplateMatcher | None) -> Pipeline:
    """A fresh core Pipeline; partitions share one read-only matcher (and its parse cache)."""
    pipeline = Pipeline(config, table)
    if matcher is not None:
        pipeline.matcher = matcher
    return pipeline


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one record did: windows to score, a decode error to dead-letter (both empty for a
    replayed record, whose outcome was committed before), and how many windows were
    suppressed."""

    windows: Sequence[Window]
    error: DecodeError | None
    replay: bool
    suppressed: int = 0


_NOTHING = Outcome((), None, False)  # shared: read-only (frozen, empty tuple)


@dataclass
class PartitionState:
    topic: str
    partition: int
    pipeline: Pipeline
    committed_offset: int | None  # what the group last committed (None: nothing yet)
    replay_until: int  # records below this offset were processed and committed before
    committed_starts: dict[str, KeyState] = field(default_factory=dict)  # as in the state topic
    watermark: float | None = None  # the checkpoint's session watermark
    next_offset: int | None = None  # offset after the last record processed here
    # The first record processed here: where a rewind restarts when nothing is committed yet.
    first_offset: int | None = None
    dirty: bool = False  # processed something since the last commit
    last_input: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.windower: Windower = self.pipeline.windower
        self.filter = ReplayFilter(self.windower, dict(self.committed_starts),
                                   self.replay_until, self.watermark)
        # The Pipeline calls windower.add/flush: during a replay they go through the filter.
        self.pipeline.windower = self.filter  # type: ignore[assignment]

    @property
    def replaying(self) -> bool:
        return self.next_offset is None or self.next_offset < self.replay_until

    def accepts(self, offset: int) -> bool:
        """False for a record already processed (a stale fetch after a rewind)."""
        return self.next_offset is None or offset >= self.next_offset

    def process(self, value: bytes | None, offset: int) -> Outcome:
        """Feed one record of this partition (offsets increasing) through the pipeline."""
        replay = offset < self.replay_until
        try:
            processed = self.pipeline.process(value, Position(self.topic, self.partition, offset))
        except DecodeError as exc:
            self.advance(offset)
            return Outcome([], None if replay else exc, replay)
        self.advance(offset)
        if replay:
            # Closed by a record below the checkpoint: its alert (if any) is already committed.
            return Outcome([], None, True, len(processed.windows))
        if not processed.windows:
            return _NOTHING  # most records close no window: no allocation for them
        return Outcome(processed.windows, None, False)

    def flush(self) -> list[Window]:
        """Close every open window (idle flush); never during a replay."""
        self.dirty = True
        self.last_input = time.monotonic()
        return self.pipeline.flush()

    def advance(self, offset: int) -> None:
        if self.first_offset is None:
            self.first_offset = offset
        self.next_offset = offset + 1
        self.dirty = True
        self.last_input = time.monotonic()
        if self.pipeline.windower is self.filter and self.next_offset >= self.replay_until:
            self.filter.reached_checkpoint()
            # Past the replay the filter passes every event through: take it out of the
            # per-record path.
            self.pipeline.windower = self.windower

    def checkpoint(self, starts: dict[str, KeyState] | None = None) -> TopicPartition | None:
        """The offset to commit (trailing to the oldest open window) with the checkpoint in
        its metadata; None when nothing was processed since the last commit. ``starts``: this
        partition's ``open_starts`` if already computed (a key's first event is its oldest, so
        their minimum equals ``Windower.oldest_open_positions`` at O(keys), not O(events))."""
        if not self.dirty or self.next_offset is None or self.replaying:
            return None  # mid-replay the windows are not whole yet: keep the old checkpoint
        if starts is None:
            starts = open_starts(self.windower)
        oldest = min((start for start, _ in starts.values()), default=math.inf)
        offset = int(min(oldest, self.next_offset))
        checkpoint = Checkpoint(self.next_offset, watermark_time(self.windower))
        return TopicPartition(self.topic, self.partition, offset, metadata=checkpoint.encode())

    def state_changes(self, current: dict[str, KeyState] | None = None
                      ) -> tuple[dict[str, KeyState], list[tuple[bytes, bytes | None]]]:
        """(current starts, state-topic records that bring the topic from the committed starts
        to the current ones)."""
        if current is None:
            current = open_starts(self.windower)
        changes: list[tuple[bytes, bytes | None]] = []
        for key, value in current.items():
            if self.committed_starts.get(key) != value:
                changes.append((state_key(self.topic, self.partition, key),
                                encode_key_state(value)))
        for key in self.committed_starts.keys() - current.keys():
            changes.append((state_key(self.topic, self.partition, key), None))
        return current, changes

    def committed(self, offset: int, starts: dict[str, KeyState]) -> None:
        self.committed_offset = offset
        self.committed_starts = starts
        self.dirty = False
