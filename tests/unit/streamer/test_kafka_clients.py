from __future__ import annotations

from pydantic import SecretStr

from streamer import kafka_clients
from streamer.settings import KafkaSettings, StreamerSettings


def _settings(**kw: object) -> StreamerSettings:
    kafka = KafkaSettings(sasl_password=SecretStr("hunter2"), sasl_username="u",
                          extra={"enable.auto.commit": "true", "fetch.min.bytes": "7"})
    return StreamerSettings(kafka=kafka, instance_id="pod-0", **kw)  # type: ignore[arg-type]


def test_owned_keys_win_over_user_extra() -> None:
    config = kafka_clients.consumer_config(_settings())
    assert config["enable.auto.commit"] is False
    assert config["isolation.level"] == "read_committed"
    assert config["partition.assignment.strategy"] == "cooperative-sticky"
    assert config["fetch.min.bytes"] == "7"  # other user keys pass through
    assert "group.instance.id" not in config
    assert kafka_clients.consumer_config(_settings(static_membership=True))[
        "group.instance.id"] == "pod-0"


def test_transactional_id_is_stable_per_instance() -> None:
    config = kafka_clients.producer_config(_settings())
    assert config["transactional.id"] == "logprompt-streamer-pod-0"
    assert config["enable.idempotence"] is True


def test_secrets_are_redacted() -> None:
    config = kafka_clients.producer_config(_settings())
    assert config["sasl.password"] == "hunter2"
    assert kafka_clients.redacted(config)["sasl.password"] == "***"
    assert "hunter2" not in repr(_settings().model_dump(mode="json"))
