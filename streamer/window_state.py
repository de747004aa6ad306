"""What a partition's open windows need to be rebuilt exactly: each open key's start offset.

Replaying a partition from its trailing committed offset ``C`` is not enough on its own: a key
whose window closed between ``C`` and the checkpoint would be rebuilt from the middle of that
window, close at another record, and drift from then on. So the streamer also keeps, in a
compacted *state topic* written in the same transaction as the offsets, one record per open
key: key ``<topic>\\x1f<partition>\\x1f<source key>``, value ``{"s": start, "e": since}``
(``s``: the offset of the key's oldest open event; ``e``, sliding windows only: events since the
key's last emitted window, which the events alone do not tell), and a tombstone when the key has
no open window any more. Only keys whose value changed since the last commit are written
(sessions: about two records per window; sliding windows: one per active key per commit).

During a replay (records below the checkpoint's ``next``), :class:`ReplayFilter` feeds the
windower an event only if its key was open at the checkpoint and the event is at or after the
key's start; the windower then holds exactly the state it held at the checkpoint.

The session watermark is restored too (checkpoint metadata ``wm``), once the replay reaches the
checkpoint: raising it earlier would close replayed sessions too soon.
"""

from __future__ import annotations

import time

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from logprompt.windows import Event, Window, Windower
from streamer.exceptions import StreamerError

SEP = "\x1f"


KeyState = tuple[int, int | None]  # (offset of the oldest open event, since_emit or None)


def open_starts(windower: Windower) -> dict[str, KeyState]:
    """Source key -> (offset of its oldest open event, events since its last emitted window
    for sliding windows) for keys with open windows."""
    sliding = windower.config.kind == "sliding"
    return {key: (start.offset, since if sliding else None)
            for key, (start, since) in windower.open_key_starts().items()}


def encode_key_state(value: KeyState) -> bytes:
    start, since = value
    return orjson.dumps({"s": start} if since is None else {"s": start, "e": since})


def decode_key_state(value: bytes) -> KeyState:
    data = orjson.loads(value)
    return int(data["s"]), (int(data["e"]) if data.get("e") is not None else None)


def watermark_time(windower: Windower) -> float | None:
    return windower.max_event_time


def restore_watermark(windower: Windower, max_time: float | None) -> None:
    windower.restore_max_event_time(max_time)


def state_key(topic: str, partition: int, key: str) -> bytes:
    return f"{topic}{SEP}{partition}{SEP}{key}".encode("utf-8", "surrogatepass")


class ReplayFilter:
    """Stands in for a partition's Windower (the Pipeline calls ``add``/``flush``); drops the
    replayed events that were not part of an open window at the checkpoint."""

    def __init__(self, inner: Windower, starts: dict[str, KeyState], replay_until: int,
                 watermark: float | None) -> None:
        self.inner = inner
        self.starts = starts
        self.replay_until = replay_until
        self._watermark = watermark
        self._restored = replay_until == 0

    def add(self, event: Event) -> list[Window]:
        offset = event.position.offset
        if offset < self.replay_until:
            saved = self.starts.get(event.key)
            if saved is None or offset < saved[0]:
                return []  # its window was already closed (and emitted) before the checkpoint
        elif not self._restored:
            self.reached_checkpoint()
        return self.inner.add(event)

    def reached_checkpoint(self) -> None:
        if not self._restored:
            restore_watermark(self.inner, self._watermark)
            for key, (_, since) in self.starts.items():
                if since is not None:
                    self.inner.restore_since_emit(key, since)
            self._restored = True

    def flush(self) -> list[Window]:
        return self.inner.flush()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def read_starts(consumer_config: dict[str, object], state_topic: str,
                wanted: list[tuple[str, int]], timeout_s: float
                ) -> dict[tuple[str, int], dict[str, KeyState]]:
    """The committed start offsets of these input partitions, from the state topic (read from
    the beginning to its last stable offset, read_committed)."""
    out: dict[tuple[str, int], dict[str, KeyState]] = {tp: {} for tp in wanted}
    config = {k: v for k, v in consumer_config.items()
              if k not in ("group.instance.id", "partition.assignment.strategy")}
    config.update({"group.id": f"{consumer_config.get('group.id')}-state-reader",
                   "enable.auto.commit": False, "isolation.level": "read_committed",
                   "enable.partition.eof": True})
    reader = Consumer(config)
    try:
        metadata = reader.list_topics(state_topic, timeout=timeout_s)
        topic_meta = metadata.topics.get(state_topic)
        if topic_meta is None or topic_meta.error is not None:
            raise StreamerError(f"state topic {state_topic!r} is missing or unreadable")
        partitions = len(topic_meta.partitions)
        prefixes = {f"{t}{SEP}{p}{SEP}".encode(): (t, p) for t, p in wanted}
        needed = sorted({state_partition(p, partitions) for _, p in wanted})
        ends: list[int] = []
        for q in needed:
            low, high = reader.get_watermark_offsets(TopicPartition(state_topic, q),
                                                     timeout=timeout_s)
            if high > low:
                ends.append(q)
        if not ends:
            return out
        reader.assign([TopicPartition(state_topic, q, OFFSET_BEGINNING) for q in ends])
        deadline = time.monotonic() + timeout_s
        done: set[int] = set()
        while len(done) < len(ends):
            if time.monotonic() > deadline:
                raise StreamerError(f"reading state topic {state_topic!r} took over "
                                    f"{timeout_s:.0f}s")
            for message in reader.consume(1000, 0.2):
                error = message.error()
                partition = message.partition()
                assert partition is not None
                if error is not None:
                    if error.code() == error._PARTITION_EOF:
                        done.add(partition)
                        continue
                    raise KafkaException(error)
                # Topic names cannot hold the separator; source keys can: split from the left.
                parts = (message.key() or b"").split(SEP.encode(), 2)
                if len(parts) != 3:
                    continue
                tp = prefixes.get(parts[0] + SEP.encode() + parts[1] + SEP.encode())
                if tp is None:
                    continue
                source = parts[2]
                value = message.value()
                name = source.decode("utf-8", "surrogatepass")
                if value is None:
                    out[tp].pop(name, None)
                else:
                    out[tp][name] = decode_key_state(value)
    finally:
        reader.close()
    return out


def state_partition(input_partition: int, state_partitions: int) -> int:
    return input_partition % state_partitions
