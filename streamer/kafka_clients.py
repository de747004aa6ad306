"""librdkafka configuration of the streamer's consumer and transactional producer.

Layered as in quix-streams: our defaults, then the user's ``kafka`` settings (connection and
``extra``), then the keys the streamer must own for exactly-once to hold. No network call
here, except :func:`check_credentials`, the start-up check that fails fast on bad credentials.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from streamer.exceptions import FatalKafkaError
from streamer.settings import StreamerSettings

# Keys whose values are never logged (librdkafka names, lower case substrings).
_SECRET_MARKERS = ("password", "secret", "token", "key.pem", "private")


def instance_id(settings: StreamerSettings) -> str:
    return settings.instance_id or socket.gethostname()


def transactional_id(settings: StreamerSettings) -> str:
    """One transactional.id per instance (KIP-447: fencing is by consumer group metadata, so
    instances need not share ids per partition); stable across restarts of the instance, so a
    restart fences its zombie and aborts the zombie's open transaction at once."""
    return f"{settings.transactional_id_prefix}-{instance_id(settings)}"


def consumer_config(settings: StreamerSettings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "auto.offset.reset": "earliest",
        "session.timeout.ms": settings.session_timeout_ms,
        "fetch.wait.max.ms": 100,
        "queued.max.messages.kbytes": 65536,
    }
    config.update(settings.kafka.librdkafka_config())
    config.update({
        "group.id": settings.group_id,
        # Offsets are committed only inside transactions, with the alerts they cover.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        # Input written transactionally by someone else: never read aborted records.
        "isolation.level": "read_committed",
        "partition.assignment.strategy": "cooperative-sticky",
    })
    if settings.static_membership:
        config["group.instance.id"] = instance_id(settings)
    return config


def producer_config(settings: StreamerSettings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "linger.ms": 5,
        "compression.type": "lz4",
        # Room for a dead-letter record cut to dead_letter_max_value_bytes plus its headers.
        "message.max.bytes": max(1_048_576, settings.dead_letter_max_value_bytes + 65_536),
    }
    config.update(settings.kafka.librdkafka_config())
    config.update({
        "transactional.id": transactional_id(settings),
        "enable.idempotence": True,
        "transaction.timeout.ms": settings.transaction_timeout_ms,
    })
    return config


def redacted(config: dict[str, Any]) -> dict[str, Any]:
    """A copy safe to log: secret-looking values masked."""
    return {k: ("***" if any(m in k.lower() for m in _SECRET_MARKERS) else v)
            for k, v in config.items()}


class KafkaCredentialsError(FatalKafkaError):
    """The cluster refused our credentials or TLS trust (or a secret file is unreadable): a
    restart cannot fix it, so the process exits at once instead of retrying forever."""


# librdkafka reports these through error_cb only; its client calls just time out meanwhile.
_CREDENTIAL_ERRORS = {KafkaError._AUTHENTICATION: "authentication failed",
                      KafkaError._SSL: "TLS handshake failed"}


def check_credentials(settings: StreamerSettings, timeout_s: float = 20.0) -> None:
    """Before any client joins the group: log in once with a metadata request. A refused login
    raises :class:`KafkaCredentialsError` within seconds (librdkafka alone would retry and the
    streamer would hang in start-up). An unreachable cluster is not decided here: after
    ``timeout_s`` the normal start-up path takes over and waits for it. PLAINTEXT has no
    credentials to check."""
    kafka = settings.kafka
    try:
        config: dict[str, Any] = dict(kafka.librdkafka_config())
    except ValueError as exc:  # an unreadable or empty secret file
        raise KafkaCredentialsError(f"kafka credentials: {exc}") from None
    if kafka.security_protocol == "PLAINTEXT":
        return
    errors: list[KafkaError] = []
    config["error_cb"] = errors.append
    admin = AdminClient(config)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=1.0)
            return
        except KafkaException:
            pass
        admin.poll(0.2)  # serves error_cb
        for error in errors:
            if error.code() in _CREDENTIAL_ERRORS:
                raise KafkaCredentialsError(
                    f"kafka {_CREDENTIAL_ERRORS[error.code()]} ({kafka.security_protocol}, "
                    f"mechanism {kafka.sasl_mechanism}, user {kafka.sasl_username!r}, "
                    f"{kafka.bootstrap_servers}): {error.str()}")
