"""Crash and restore of one partition's windows, without a broker.

A fake "Kafka" keeps what a transaction would commit: the trailing offset with its checkpoint
metadata, the state topic's start offsets, and the emitted windows. Crashing at random points
and restoring from what was committed must emit exactly the windows of an uninterrupted run,
for every window kind and close reason (full, gap by watermark, max_events, evicted, flush).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from logprompt.datasets import RawRecord, cut_windows, learn_templates, read_lines
from logprompt.pipeline import PipelineConfig
from logprompt.presets import preset
from logprompt.synthetic import generate, json_lines
from logprompt.windows import Position, WindowConfig
from streamer.partitions import Checkpoint, PartitionState, new_pipeline
from streamer.window_state import SEP, KeyState, decode_key_state


@dataclass
class FakeKafka:
    offset: int | None = None
    metadata: str | None = None
    starts: dict[str, KeyState] = field(default_factory=dict)
    emitted: list[str] = field(default_factory=list)
    dead: list[int] = field(default_factory=list)


def _state(config: PipelineConfig, table, kafka: FakeKafka) -> PartitionState:  # noqa: ANN001
    cp = Checkpoint.decode(kafka.metadata)
    return PartitionState("logs", 0, new_pipeline(config, table, None),
                          committed_offset=kafka.offset,
                          replay_until=max(cp.next_offset if cp else 0, kafka.offset or 0),
                          committed_starts=dict(kafka.starts) if cp else {},
                          watermark=cp.watermark if cp else None)


def _commit(state: PartitionState, kafka: FakeKafka, pending: list[str], dead: list[int]
            ) -> None:
    tp = state.checkpoint()
    if tp is not None:
        current, changes = state.state_changes()
        for key, value in changes:
            name = key.decode().split(SEP, 2)[2]
            if value is None:
                kafka.starts.pop(name, None)
            else:
                kafka.starts[name] = decode_key_state(value)
        assert kafka.offset is None or tp.offset >= kafka.offset, "offset went backwards"
        oldest = state.windower.oldest_open_positions().get(("logs", 0), tp.offset)
        assert tp.offset == min(oldest, state.next_offset or 0)
        kafka.offset, kafka.metadata = tp.offset, tp.metadata
        state.committed(tp.offset, current)
    kafka.emitted.extend(pending)
    kafka.dead.extend(dead)
    pending.clear()
    dead.clear()


def simulate(config: PipelineConfig, table, values: list[bytes], seed: int | None,  # noqa: ANN001
             commit_every: int = 37) -> FakeKafka:
    """Process all values; with a seed, crash (drop everything uncommitted) at random points."""
    rng = random.Random(seed)
    kafka = FakeKafka()
    crashes = sorted(rng.sample(range(len(values)), 6)) if seed is not None else []
    while True:
        state = _state(config, table, kafka)
        pending: list[str] = []
        dead: list[int] = []
        start = kafka.offset or 0
        crashed = False
        for offset in range(start, len(values)):
            outcome = state.process(values[offset], offset)
            pending.extend(w.window_id for w in outcome.windows)
            if outcome.error is not None:
                dead.append(offset)
            if crashes and offset == crashes[0]:
                crashes.pop(0)
                crashed = True
                break
            if offset % commit_every == 0:
                _commit(state, kafka, pending, dead)
        if crashed:
            continue
        pending.extend(w.window_id for w in state.flush())
        _commit(state, kafka, pending, dead)
        return kafka


def _hdfs(root: Path) -> list[bytes]:
    return [r.value for r in read_lines(root / "hdfs" / "HDFS_2pct.log.gz", limit=3000)]


def _json() -> list[bytes]:
    lines, _ = generate(n_sessions=150, seed=3)
    values = list(json_lines(lines))
    values.insert(40, b"{broken")
    values.insert(400, b"")
    return values


CASES = {
    "hdfs-sliding-overlap": ("hdfs", preset("hdfs").model_copy(update={
        "window": WindowConfig(kind="sliding", size=10, step=4, max_events=10)})),
    "hdfs-session-gap-maxevents": ("hdfs", preset("hdfs").model_copy(update={
        "window": WindowConfig(kind="session", gap_s=20.0, max_events=15)})),
    "hdfs-session-evictions": ("hdfs", preset("hdfs").model_copy(update={
        "window": WindowConfig(kind="session", gap_s=3600.0, max_events=512,
                               max_open_keys=25)})),
    "json-session-evictions": ("json", preset("json").model_copy(update={
        "window": WindowConfig(kind="session", gap_s=0.5, max_events=64, max_open_keys=8,
                               allowed_lateness_s=0.1)})),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_crashes_emit_exactly_the_uninterrupted_windows(case: str, datasets_root: Path) -> None:
    kind, config = CASES[case]
    values = _hdfs(datasets_root) if kind == "hdfs" else _json()
    raw = [RawRecord(v, Position("logs", 0, i)) for i, v in enumerate(values)]
    table = learn_templates(config, raw[: len(raw) // 2])
    offline = [w.window_id for w in cut_windows(config, table, raw)]
    uninterrupted = simulate(config, table, values, seed=None)
    assert uninterrupted.emitted == offline
    reasons = {w.close_reason for w in cut_windows(config, table, raw)}
    assert len(reasons) >= 2, reasons  # the case exercises more than the final flush
    for seed in range(4):
        crashed = simulate(config, table, values, seed=seed)
        assert crashed.emitted == offline, f"seed {seed}"
        assert crashed.dead == uninterrupted.dead
