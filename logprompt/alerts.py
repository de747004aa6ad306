"""The alert schema: what the streamer writes to the alerts topic, one JSON object per window
whose anomaly score reached the threshold.

Kafka record: key = the source key (UTF-8), so one source's alerts stay in order in one
partition; value = the JSON below (orjson, UTF-8, keys in this order); headers
``logprompt.schema_version`` and ``logprompt.model_version``.

Schema, ``schema_version`` 1 (a reader must ignore fields it does not know; a change that
removes or changes the meaning of a field bumps the version):

==========================  ===============================================================
``schema_version``          int, 1
``alert_id``                str, 32 hex digits: :attr:`logprompt.windows.Window.window_id`,
                            a hash of the key and the records' content (not their offsets):
                            a replay, a restart or an offline run give the same id
``source_key``              str, the window's source key
``window_start``            float | null, earliest event time in the window (epoch seconds)
``window_end``              float | null, latest event time in the window (epoch seconds)
``close_reason``            str, why the window closed: full, gap, max_events, evicted, flush
``event_count``             int, events in the window
``records``                 list of {topic, partition, first_offset, last_offset}: where the
                            window's records are in Kafka (inclusive ranges; a range may
                            include records of other keys)
``template_ids``            list[str], the window's template ids in order (8 hex digits)
``raw_lines``               list[str], the window's last ``max_raw_lines`` raw lines
                            (each cut to the pipeline's ``max_message_chars``)
``score``                   float, anomaly probability from the model
``threshold``               float, the threshold in force (score >= threshold alerts)
``model_version``           str, the bundle's model version
``unseen_templates``        list[str], template ids of the window that are not in the model's
                            training template table, first-seen order: the one cheap
                            explanation we have (no per-template attribution is computed)
``detected_at``             float, wall-clock time the streamer scored the window (epoch
                            seconds); the only field that differs between a run and a replay
==========================  ===============================================================
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from logprompt.windows import Window

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class RecordRange:
    topic: str
    partition: int
    first_offset: int
    last_offset: int


@dataclass(frozen=True, slots=True)
class Alert:
    """One anomalous window, as published. See the module docstring for the schema."""

    alert_id: str
    source_key: str
    window_start: float | None
    window_end: float | None
    close_reason: str
    event_count: int
    records: tuple[RecordRange, ...]
    template_ids: tuple[str, ...]
    raw_lines: tuple[str, ...]
    score: float
    threshold: float
    model_version: str
    unseen_templates: tuple[str, ...]
    detected_at: float
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def from_window(
        cls,
        window: Window,
        score: float,
        threshold: float,
        model_version: str,
        known_template_ids: Collection[str],
        max_raw_lines: int,
        detected_at: float | None = None,
    ) -> Alert:
        ranges = tuple(
            RecordRange(topic, partition, lo, hi)
            for (topic, partition), (lo, hi) in sorted(window.offset_ranges().items())
        )
        unseen = dict.fromkeys(
            e.template_id for e in window.events if e.template_id not in known_template_ids
        )
        lines = [e.message for e in window.events[-max_raw_lines:]] if max_raw_lines > 0 else []
        return cls(
            alert_id=window.window_id,
            source_key=window.key,
            window_start=window.start_time,
            window_end=window.end_time,
            close_reason=window.close_reason,
            event_count=len(window.events),
            records=ranges,
            template_ids=tuple(window.template_ids),
            raw_lines=tuple(lines),
            score=float(score),
            threshold=float(threshold),
            model_version=model_version,
            unseen_templates=tuple(unseen),
            detected_at=time.time() if detected_at is None else detected_at,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        # schema_version first: a reader sees what it is reading before anything else.
        return {"schema_version": data.pop("schema_version"), **data}

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    def kafka_key(self) -> bytes:
        return self.source_key.encode("utf-8", "surrogatepass")

    @classmethod
    def from_json(cls, value: bytes) -> Alert:
        """Parse an alert of this schema version; unknown fields are ignored."""
        data = orjson.loads(value)
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"alert schema_version {data.get('schema_version')!r} is not "
                             f"{SCHEMA_VERSION}")
        known = set(cls.__dataclass_fields__)
        data = {k: v for k, v in data.items() if k in known}
        data["records"] = tuple(RecordRange(**r) for r in data["records"])
        for name in ("template_ids", "raw_lines", "unseen_templates"):
            data[name] = tuple(data[name])
        return cls(**data)
