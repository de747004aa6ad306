"""Per-source windows of parsed log events: count-based sliding windows and event-time sessions.

A :class:`Windower` is a pure object (no Kafka, no clock): events go in, closed windows come out.
Training, evaluation and the streamer all cut windows with it, so a window scored offline and
the same window scored in the stream are the same window.

Bounds: at most ``max_open_keys`` keys hold events (the least recently active key is closed with
reason ``evicted`` when a new one arrives), and no window holds more than ``max_events`` events.

Lateness (session windows): the watermark is the highest event time seen minus
``allowed_lateness_s``. A session closes when the watermark passes its last event time plus
``gap_s``. A record for a key with an open session always joins it, even out of order (windows
keep arrival order, which is Kafka order). A record older than ``watermark - gap_s`` for a key
without an open session is *late*: counted, and with ``late_policy='window'`` it is emitted at
once as a window of its own; with ``'drop'`` it is dropped (counted in ``stats``).
Records without an event time take the current watermark.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

CloseReason = Literal["full", "gap", "max_events", "evicted", "flush"]


@dataclass(frozen=True, slots=True)
class Position:
    """Where a record came from: a Kafka topic/partition/offset, or a file and line number."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Event:
    """One parsed record as seen by one source key."""

    key: str
    template_id: str
    template: str
    timestamp: float | None
    position: Position
    message: str = ""
    label: int | None = None  # offline data sets only: 1 anomalous line, 0 normal


@dataclass(frozen=True, slots=True)
class Window:
    key: str
    events: tuple[Event, ...]
    close_reason: CloseReason
    closed_by: Position | None = None  # the event whose arrival closed it (None: flush/gap)

    @property
    def template_ids(self) -> list[str]:
        return [e.template_id for e in self.events]

    @property
    def templates(self) -> list[str]:
        return [e.template for e in self.events]

    @property
    def start_time(self) -> float | None:
        times = [e.timestamp for e in self.events if e.timestamp is not None]
        return min(times) if times else None

    @property
    def end_time(self) -> float | None:
        times = [e.timestamp for e in self.events if e.timestamp is not None]
        return max(times) if times else None

    def offset_ranges(self) -> dict[tuple[str, int], tuple[int, int]]:
        """(topic, partition) -> (first offset, last offset) of this window's records."""
        ranges: dict[tuple[str, int], tuple[int, int]] = {}
        for e in self.events:
            tp = (e.position.topic, e.position.partition)
            lo, hi = ranges.get(tp, (e.position.offset, e.position.offset))
            ranges[tp] = (min(lo, e.position.offset), max(hi, e.position.offset))
        return ranges

    @property
    def window_id(self) -> str:
        """Deterministic id from the key and the content of its records (not their Kafka
        offsets), so a replay, a restart or an offline run give the same id."""
        digest = hashlib.sha256(self.key.encode())
        for e in self.events:
            digest.update(b"\x1f")
            digest.update(repr(e.timestamp).encode())
            digest.update(b"\x1e")
            digest.update(e.template_id.encode())
            digest.update(e.message.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()[:32]


class WindowConfig(BaseModel):
    """``sliding``: windows of ``size`` events every ``step`` events per key (the last, partial
    window is emitted at flush). ``session``: a key's events until a gap of ``gap_s`` seconds of
    event time, or ``max_events`` events."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["sliding", "session"] = "sliding"
    size: int = 20
    step: int = 20
    gap_s: float = 300.0
    max_events: int = 512
    max_open_keys: int = 100_000
    allowed_lateness_s: float = 0.0
    late_policy: Literal["window", "drop"] = "window"

    @model_validator(mode="after")
    def _check(self) -> WindowConfig:
        if self.size < 1 or self.step < 1 or self.max_events < 1 or self.max_open_keys < 1:
            raise ValueError("size, step, max_events and max_open_keys must be >= 1")
        if self.kind == "sliding" and self.size > self.max_events:
            raise ValueError("sliding window size must not exceed max_events")
        return self


@dataclass
class WindowStats:
    events: int = 0
    windows: int = 0
    late: int = 0
    dropped_late: int = 0
    evicted: int = 0


@dataclass
class _KeyState:
    events: deque[Event] = field(default_factory=deque)
    since_emit: int = 0  # sliding: events added since the last emitted window
    last_time: float = -math.inf  # session: event time of the latest event
    version: int = 0  # session: the latest event's sequence number; stale heap entries skip


class Windower:
    """Cuts events into windows per key. Feed with :meth:`add`; finish with :meth:`flush`."""

    def __init__(self, config: WindowConfig) -> None:
        self.config = config
        self.stats = WindowStats()
        self._keys: OrderedDict[str, _KeyState] = OrderedDict()  # least recently active first
        self._deadlines: list[tuple[float, int, str]] = []  # session: (close time, version, key)
        self._max_time = -math.inf
        self._sequence = 0  # session: numbers events so stale deadlines can be recognised

    # -- public API -----------------------------------------------------------------------
    @property
    def open_keys(self) -> int:
        return len(self._keys)

    @property
    def open_events(self) -> int:
        return sum(len(s.events) for s in self._keys.values())

    @property
    def watermark(self) -> float:
        return self._max_time - self.config.allowed_lateness_s

    def add(self, event: Event) -> list[Window]:
        """Add one event; return the windows it closed (possibly none), oldest first."""
        self.stats.events += 1
        if self.config.kind == "sliding":
            return self._add_sliding(event)
        return self._add_session(event)

    def add_all(self, events: Iterable[Event]) -> list[Window]:
        out: list[Window] = []
        for event in events:
            out.extend(self.add(event))
        return out

    def flush(self) -> list[Window]:
        """Close every open window (end of input), in order of last activity."""
        out: list[Window] = []
        for key, state in list(self._keys.items()):
            if state.events and (self.config.kind == "session" or state.since_emit > 0):
                out.append(self._emit(key, tuple(state.events), "flush", None))
        self._keys.clear()
        self._deadlines.clear()
        return out

    # -- checkpoint support (the streamer rebuilds open windows after a restart) -------------
    def open_key_starts(self) -> dict[str, tuple[Position, int]]:
        """Key -> (position of its oldest open event, events added since its last emitted
        window) for every key with an open window. With the event log, that is all the state
        needed to rebuild the windower exactly (the count matters for sliding windows)."""
        return {key: (state.events[0].position, state.since_emit)
                for key, state in self._keys.items() if state.events}

    def restore_since_emit(self, key: str, since_emit: int) -> None:
        """After replaying a key's open events, set its count of events since the last emitted
        window as it was at the checkpoint (no-op for a key without open events)."""
        state = self._keys.get(key)
        if state is not None:
            state.since_emit = since_emit

    @property
    def max_event_time(self) -> float | None:
        """The highest event time seen (the watermark before lateness); None before any."""
        return self._max_time if math.isfinite(self._max_time) else None

    def restore_max_event_time(self, value: float | None) -> None:
        """Raise the highest event time seen to a checkpointed value (never lowers it)."""
        if value is not None and value > self._max_time:
            self._max_time = value

    def oldest_open_positions(self) -> dict[tuple[str, int], int]:
        """(topic, partition) -> the smallest offset any open window still needs. Offsets
        below it are no longer needed to rebuild open windows after a restart."""
        oldest: dict[tuple[str, int], int] = {}
        for state in self._keys.values():
            for e in state.events:
                tp = (e.position.topic, e.position.partition)
                if e.position.offset < oldest.get(tp, math.inf):
                    oldest[tp] = e.position.offset
        return oldest

    # -- sliding --------------------------------------------------------------------------
    def _add_sliding(self, event: Event) -> list[Window]:
        out = self._make_room(event.key)
        state = self._touch(event.key)
        state.events.append(event)
        if len(state.events) > self.config.size:
            state.events.popleft()
        state.since_emit += 1
        if len(state.events) == self.config.size and state.since_emit >= self.config.step:
            out.append(self._emit(event.key, tuple(state.events), "full", event.position))
            state.since_emit = 0
            # Keep only what the next window overlaps with.
            keep = max(self.config.size - self.config.step, 0)
            while len(state.events) > keep:
                state.events.popleft()
            if not state.events:
                del self._keys[event.key]
        return out

    # -- session --------------------------------------------------------------------------
    def _add_session(self, event: Event) -> list[Window]:
        # The hot path of the streamer: locals instead of repeated attribute/property lookups.
        cfg = self.config
        gap = cfg.gap_s
        key = event.key
        keys = self._keys
        ts = event.timestamp if event.timestamp is not None else self._max_time
        if ts == -math.inf:
            ts = 0.0
        out: list[Window] = []
        state = keys.get(key)
        if state is not None and ts - state.last_time > gap:
            # This key's own next event proves the gap: close before adding.
            out.append(self._emit(key, tuple(state.events), "gap", event.position))
            del keys[key]
            state = None
        if state is None:
            if ts + gap < self._max_time - cfg.allowed_lateness_s:  # older than the watermark
                self.stats.late += 1
                if cfg.late_policy == "drop":
                    self.stats.dropped_late += 1
                    return out
            if len(keys) >= cfg.max_open_keys:
                out.extend(self._make_room(key))
            state = keys[key] = _KeyState()
        else:
            keys.move_to_end(key)
        state.events.append(event)
        if ts > state.last_time:
            state.last_time = ts
        self._sequence += 1
        state.version = self._sequence
        heapq.heappush(self._deadlines, (state.last_time + gap, state.version, key))
        if len(self._deadlines) > 2 * len(keys) + 1024:
            self._compact_deadlines()
        if len(state.events) >= cfg.max_events:
            out.append(self._emit(key, tuple(state.events), "max_events", event.position))
            del keys[key]
        if ts > self._max_time:
            self._max_time = ts
        deadlines = self._deadlines
        if deadlines and deadlines[0][0] < self._max_time - cfg.allowed_lateness_s:
            out.extend(self._close_expired(event.position))
        return out

    def _compact_deadlines(self) -> None:
        """Drop stale deadlines (keys closed, evicted or with newer events): the heap stays
        proportional to the open keys, not to the events seen."""
        live = [(s.last_time + self.config.gap_s, s.version, k) for k, s in self._keys.items()]
        heapq.heapify(live)
        self._deadlines = live

    def _close_expired(self, trigger: Position) -> list[Window]:
        out: list[Window] = []
        watermark = self.watermark
        while self._deadlines and self._deadlines[0][0] < watermark:
            _, version, key = heapq.heappop(self._deadlines)
            state = self._keys.get(key)
            if state is None or state.version != version:
                continue  # stale entry: the key was closed or has newer events
            out.append(self._emit(key, tuple(state.events), "gap", trigger))
            del self._keys[key]
        return out

    # -- shared ---------------------------------------------------------------------------
    def _touch(self, key: str) -> _KeyState:
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _KeyState()
        else:
            self._keys.move_to_end(key)
        return state

    def _make_room(self, key: str) -> list[Window]:
        if key in self._keys or len(self._keys) < self.config.max_open_keys:
            return []
        victim, state = next(iter(self._keys.items()))
        del self._keys[victim]
        self.stats.evicted += 1
        if state.events and (self.config.kind == "session" or state.since_emit > 0):
            return [self._emit(victim, tuple(state.events), "evicted", None)]
        return []

    def _emit(
        self, key: str, events: tuple[Event, ...], reason: CloseReason, by: Position | None
    ) -> Window:
        self.stats.windows += 1
        return Window(key=key, events=events, close_reason=reason, closed_by=by)
