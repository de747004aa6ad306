"""The project's broker with SASL/SCRAM over TLS: clients with the right credentials produce and
consume; wrong credentials fail fast with an authentication error, not a hang."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from logprompt.local_kafka.security import MECHANISM, TlsFiles, sasl_ssl_broker

USER, PASSWORD = "streamer", "s3cret-Pa55"


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, TlsFiles]]:
    broker, tls = sasl_ssl_broker(Path(tmp_path_factory.mktemp("sasl")), {USER: PASSWORD})
    broker.start()
    try:
        yield f"localhost:{broker.port}", tls
    finally:
        broker.stop()


def client_config(bootstrap: str, tls: TlsFiles, password: str) -> dict[str, str]:
    return {"bootstrap.servers": bootstrap, "security.protocol": "SASL_SSL",
            "sasl.mechanism": MECHANISM, "sasl.username": USER, "sasl.password": password,
            "ssl.ca.location": str(tls.ca_pem)}


def test_authenticated_client_produces_and_consumes(secure_broker: tuple[str, TlsFiles]) -> None:
    bootstrap, tls = secure_broker
    config = client_config(bootstrap, tls, PASSWORD)
    admin = AdminClient(config)
    admin.create_topics([NewTopic("secure-logs", 2, 1)])["secure-logs"].result(timeout=30)
    producer = Producer(config)
    for i in range(10):
        producer.produce("secure-logs", value=f"line {i}".encode())
    assert producer.flush(30) == 0
    consumer = Consumer({**config, "group.id": "secure-group", "auto.offset.reset": "earliest"})
    consumer.subscribe(["secure-logs"])
    got: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(got) < 10 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            got.append(msg.value() or b"")
    consumer.close()
    assert sorted(got) == sorted(f"line {i}".encode() for i in range(10))


def test_wrong_password_is_reported_fast(secure_broker: tuple[str, TlsFiles]) -> None:
    """librdkafka reports a failed SCRAM login through error_cb within seconds (the streamer
    turns that into a fatal, clearly worded error); metadata requests then fail."""
    bootstrap, tls = secure_broker
    errors: list[KafkaError] = []
    admin = AdminClient({**client_config(bootstrap, tls, "wrong-password"),
                         "error_cb": errors.append})
    start = time.monotonic()
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)
    admin.poll(1.0)  # serves error_cb
    auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
    assert auth, [str(e) for e in errors]
    assert "authentication failed" in auth[0].str().lower()
    assert time.monotonic() - start < 8
