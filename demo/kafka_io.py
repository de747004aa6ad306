"""Small Kafka helpers the demo and the report share: topics, reading alerts, group progress."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from logprompt.alerts import Alert


def ensure_topics(bootstrap: str, topics: dict[str, int]) -> None:
    """Create the topics that do not exist yet (name -> partitions)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=30).topics)
    new = [NewTopic(name, num_partitions=n, replication_factor=1,
                    config={"max.message.bytes": str(16 * 1024 * 1024)})
           for name, n in topics.items() if name not in existing]
    if new:
        for future in admin.create_topics(new).values():
            future.result(timeout=30)


def records_in(bootstrap: str, topic: str, timeout_s: float = 30.0) -> int:
    """How many records a topic holds now (sum over partitions of high - low watermark).
    A topic created a moment ago may have no partition leader yet: asked again until
    ``timeout_s``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"count-{time.time_ns()}"})
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                metadata = consumer.list_topics(topic, timeout=10).topics[topic]
                marks = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                         for p in metadata.partitions]
                return sum(high - low for low, high in marks)
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()


def read_alerts(bootstrap: str, topic: str, stop: Callable[[], bool],
                on_alert: Callable[[Alert], None] | None = None, idle_s: float = 5.0) -> list[Alert]:
    """Read committed alerts from the beginning until ``stop()`` and ``idle_s`` without news."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.time_ns()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "isolation.level": "read_committed"})
    consumer.subscribe([topic])
    alerts: list[Alert] = []
    last_news = time.monotonic()
    try:
        while not (stop() and time.monotonic() - last_news > idle_s):
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            alert = Alert.from_json(msg.value() or b"")
            alerts.append(alert)
            last_news = time.monotonic()
            if on_alert is not None:
                on_alert(alert)
    finally:
        consumer.close()
    return alerts


def group_caught_up(bootstrap: str, group: str, topic: str) -> tuple[bool, int, int]:
    """(caught up, committed total, end offsets total) of a consumer group on one topic."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        tps = [TopicPartition(topic, p) for p in metadata.partitions]
        committed = consumer.committed(tps, timeout=10)
        ends = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps]
    except KafkaException:  # e.g. the group coordinator is still loading: ask again later
        return False, 0, -1
    finally:
        consumer.close()
    done = sum(max(tp.offset, 0) for tp in committed)
    total = sum(ends)
    return done >= total, done, total
