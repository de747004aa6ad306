"""Produce a log file (plain or gzip; text or JSON lines) into a topic, keyed by source key.

Keys come from the pipeline's own decoding and source-key rules (the first key of a record), so
all records of one source land in one partition and keep their order. Rate limiting spreads
records evenly; ``rate=None`` produces as fast as the client allows.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaError, Message, Producer
from tqdm import tqdm

from logprompt.datasets import read_lines
from logprompt.pipeline import PipelineConfig
from logprompt.records import DecodeError, decode_record
from logprompt.sources import source_keys


@dataclass
class ReplayStats:
    records: int = 0
    undecodable: int = 0  # produced anyway: the streamer dead-letters them
    seconds: float = 0.0

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def record_key(value: bytes, config: PipelineConfig) -> tuple[bytes | None, float | None]:
    """(Kafka key, event time) of a record; (None, None) when it cannot be decoded."""
    try:
        record = decode_record(value, config.record)
    except DecodeError:
        return None, None
    keys = source_keys(record, config.source)
    return (keys[0].encode() if keys else None), record.timestamp


def replay(values: Iterable[bytes], topic: str, bootstrap: str, config: PipelineConfig,
           rate: float | None = None, keep_timestamps: bool = False, progress: bool = True,
           total: int | None = None, producer_config: dict[str, str] | None = None) -> ReplayStats:
    """Produce every value to ``topic``; returns once all are acknowledged."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "compression.type": "lz4",
                         "message.max.bytes": 16 * 1024 * 1024, **(producer_config or {})})
    stats = ReplayStats()
    errors: list[str] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(str(err))

    start = time.perf_counter()
    bar = tqdm(total=total, unit="lines", disable=not progress, desc=f"replay -> {topic}")
    for value in values:
        key, timestamp = record_key(value, config)
        stats.undecodable += key is None and timestamp is None
        produce_ms = int(timestamp * 1000) if keep_timestamps and timestamp else 0  # 0: now
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=delivered,
                                 timestamp=produce_ms)
                break
            except BufferError:  # local queue full: let deliveries drain
                producer.poll(0.05)
        producer.poll(0)
        stats.records += 1
        bar.update(1)
        if rate:
            ahead = stats.records / rate - (time.perf_counter() - start)
            if ahead > 0:
                time.sleep(ahead)
    bar.close()
    remaining = producer.flush(60)
    stats.seconds = time.perf_counter() - start
    if remaining or errors:
        raise RuntimeError(f"replay to {topic}: {remaining} undelivered, errors: {errors[:3]}")
    return stats


def file_values(path: Path, limit: int | None = None) -> Iterator[bytes]:
    for record in read_lines(path, limit=limit):
        if record.value:
            yield record.value
