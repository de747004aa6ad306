"""Proves the harness against the real broker: produce, consume in a group, commit, and a
transactional produce with offsets sent to the transaction (the streamer's commit path)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition


def _consume(bootstrap: str, topic: str, group: str, count: int, timeout_s: float = 30.0,
             read_committed: bool = False) -> list:
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "isolation.level": "read_committed" if read_committed else "read_uncommitted",
    })
    consumer.subscribe([topic])
    messages = []
    import time
    deadline = time.monotonic() + timeout_s
    try:
        while len(messages) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            messages.append(msg)
        if messages:
            consumer.commit(asynchronous=False)
        return messages
    finally:
        consumer.close()


def test_produce_consume_commit(kafka_bootstrap: str, make_topic: Callable[..., str],
                                make_group: Callable[[], str]) -> None:
    topic = make_topic(partitions=3)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(30):
        producer.produce(topic, key=str(i).encode(), value=f"line {i}".encode(), partition=i % 3)
    assert producer.flush(30) == 0
    group = make_group()
    messages = _consume(kafka_bootstrap, topic, group, 30)
    assert sorted(m.value() for m in messages) == sorted(f"line {i}".encode() for i in range(30))
    # The group's committed offsets cover everything: a new member of the group reads nothing.
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group})
    committed = consumer.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
    consumer.close()
    assert [tp.offset for tp in committed] == [10, 10, 10]


def test_transaction_with_consumer_offsets(kafka_bootstrap: str, make_topic: Callable[..., str],
                                           make_group: Callable[[], str]) -> None:
    source, sink = make_topic(partitions=2), make_topic(partitions=1)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(10):
        producer.produce(source, value=f"in {i}".encode(), partition=i % 2)
    producer.flush(30)

    group = make_group()
    consumer = Consumer({
        "bootstrap.servers": kafka_bootstrap, "group.id": group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "isolation.level": "read_committed",
    })
    consumer.subscribe([source])
    tx = Producer({"bootstrap.servers": kafka_bootstrap,
                   "transactional.id": f"tx-{uuid.uuid4().hex[:8]}"})
    tx.init_transactions(30)
    seen = []
    import time
    deadline = time.monotonic() + 30
    while len(seen) < 10 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            seen.append(msg)
    assert len(seen) == 10

    # An aborted transaction leaves nothing visible to read_committed readers.
    tx.begin_transaction()
    tx.produce(sink, value=b"aborted")
    tx.abort_transaction(30)

    tx.begin_transaction()
    for msg in seen:
        tx.produce(sink, value=msg.value().replace(b"in", b"out"))
    tx.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                   consumer.consumer_group_metadata(), 30)
    tx.commit_transaction(30)
    consumer.close()

    out = _consume(kafka_bootstrap, sink, make_group(), 10, read_committed=True)
    assert sorted(m.value() for m in out) == sorted(f"out {i}".encode() for i in range(10))
    check = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group})
    committed = check.committed([TopicPartition(source, 0), TopicPartition(source, 1)], timeout=10)
    check.close()
    assert [tp.offset for tp in committed] == [5, 5]
    assert KafkaError.NO_ERROR == 0
