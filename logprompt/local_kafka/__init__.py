"""A real single-node Apache Kafka broker (KRaft) for development, tests, benchmarks and the demo.

Jars come from Maven Central through ``mvn dependency:copy-dependencies`` on the bundled
``pom.xml`` and are cached, so a second start needs no network.
"""

from logprompt.local_kafka.broker import (
    BrokerError,
    LocalKafkaBroker,
    ensure_jars,
    kafka_version,
)

__all__ = ["BrokerError", "LocalKafkaBroker", "ensure_jars", "kafka_version"]
