"""A produce that fails in the consume loop (not in a commit) aborts and rewinds, as a failed
commit does: the process keeps running and every alert is still committed exactly once.

The fault suite's broker restart found it: after the restart the transaction turned abortable
and librdkafka refused the next alert's produce() with _STATE, which ended the process.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, Message

from logprompt.datasets import RawRecord
from streamer.app import StreamerApp
from streamer.exceptions import FatalKafkaError
from streamer.settings import StreamerSettings
from tests.integration.streamer.conftest import offline_expected, produce_replay
from tests.integration.streamer.test_parity import run_until_alerts

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


class FailingProduceApp(StreamerApp):
    """Raises what produce() raises once, after the third non-empty batch was handled (its
    windows are then in the open transaction, some alerts produced): by default librdkafka's
    _STATE (the transaction turned abortable)."""

    batches = 0
    error = KafkaError(KafkaError._STATE, "Unable to produce message: Local: Erroneous state",
                       txn_requires_abort=True)

    def _handle_batch(self, messages: list[Message]) -> None:
        super()._handle_batch(messages)
        self.batches += bool(messages)
        if self.batches == 3:
            raise KafkaException(self.error)


class FatalProduceApp(FailingProduceApp):
    """produce() of a producer in a fatal state: code _FATAL, yet ``fatal()`` is False."""

    error = KafkaError(KafkaError._FATAL, "Unable to produce message: Local: Fatal error")


@pytest.mark.parametrize("commit_interval_ms", [200, 8000], ids=["after-commits", "before-any"])
def test_loop_produce_failure_aborts_and_rewinds(
        kafka_bootstrap: str, topics: Callable[..., dict[str, str]],
        streamer_settings: Callable[..., StreamerSettings], hdfs_records: list[RawRecord],
        hdfs_sliding_bundle: Path, commit_interval_ms: int) -> None:
    """``before-any``: the failure comes before the first commit, so the rewind has no
    committed offset to go back to; it must restart where the partition's records began."""
    expected = offline_expected(hdfs_sliding_bundle, hdfs_records)
    t = topics(partitions=2)
    produce_replay(kafka_bootstrap, t["logs"], [r.value for r in hdfs_records])
    settings = streamer_settings(input_topics=[t["logs"]], alerts_topic=t["alerts"],
                                 dead_letter_topic=t["dlq"], bundle_path=hdfs_sliding_bundle,
                                 max_batch_size=32, commit_interval_ms=commit_interval_ms)
    app = FailingProduceApp(settings)
    alerts = run_until_alerts(app, kafka_bootstrap, t["alerts"], len(expected.alerts))

    assert app.batches >= 3 and app.summary.aborts >= 1
    if commit_interval_ms > 1000:
        assert app.summary.transactions >= 1  # the run did commit, after the failure
    ids = [a.alert_id for a in alerts]
    assert len(ids) == len(set(ids)), "an alert was committed twice"
    assert set(ids) == set(expected.alerts)


def test_loop_produce_fatal_error_ends_the_run_as_fatal(
        kafka_bootstrap: str, topics: Callable[..., dict[str, str]],
        streamer_settings: Callable[..., StreamerSettings], hdfs_records: list[RawRecord],
        hdfs_sliding_bundle: Path) -> None:
    """Not an abort (a fatal producer cannot abort): FatalKafkaError, which the CLI turns into
    exit code 3 for a restart, not an unhandled exception (exit 1)."""
    t = topics(partitions=2)
    produce_replay(kafka_bootstrap, t["logs"], [r.value for r in hdfs_records[:3000]])
    app = FatalProduceApp(streamer_settings(
        input_topics=[t["logs"]], alerts_topic=t["alerts"], dead_letter_topic=t["dlq"],
        bundle_path=hdfs_sliding_bundle, max_batch_size=32))
    with pytest.raises(FatalKafkaError):
        app.run(max_seconds=120)
    assert app.batches == 3
