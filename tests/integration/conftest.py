"""A real Apache Kafka broker for the integration tests, once per test session.

``KAFKA_BOOTSTRAP_SERVERS`` set: use that cluster. Otherwise start the project's own broker
(``logprompt.local_kafka``) in a temporary data dir. Every test gets uuid-named topics and
consumer groups from the factory fixtures, so tests never see each other's data.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from logprompt.local_kafka import LocalKafkaBroker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    broker = LocalKafkaBroker(data_dir=Path(tmp_path_factory.mktemp("kafka")))
    broker.start()
    print(f"\nstarted {broker.version_line()} on {broker.bootstrap_servers}")
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": kafka_bootstrap})


@pytest.fixture
def make_topic(kafka_admin: AdminClient) -> Iterator[Callable[..., str]]:
    """Create a uuid-named topic: ``make_topic(partitions=3, config={...})``."""
    created: list[str] = []

    def factory(partitions: int = 3, prefix: str = "test", config: dict[str, str] | None = None
                ) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        futures = kafka_admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})]
        )
        futures[name].result(timeout=30)
        created.append(name)
        return name

    yield factory
    if created:
        for future in kafka_admin.delete_topics(created).values():
            with contextlib.suppress(Exception):  # cleanup must not fail the test
                future.result(timeout=30)


@pytest.fixture
def make_group() -> Callable[[], str]:
    return lambda: f"group-{uuid.uuid4().hex[:12]}"
