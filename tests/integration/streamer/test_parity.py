"""Online alerts equal offline scoring, window for window, on a replayed HDFS slice."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from logprompt.alerts import Alert
from logprompt.datasets import RawRecord
from streamer.app import StreamerApp
from streamer.settings import StreamerSettings
from tests.integration.streamer.conftest import Expected, produce_replay, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def run_until_alerts(app: StreamerApp, bootstrap: str, alerts_topic: str, expect: int,
                     timeout_s: float = 120.0) -> list[Alert]:
    """Run the app on a thread until ``expect`` alerts are committed (plus a quiet period)."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            app.run(max_seconds=timeout_s)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    try:
        messages = read_topic(bootstrap, alerts_topic, expect=expect, quiet_s=4.0,
                              timeout_s=timeout_s)
    finally:
        app.request_stop("test done")
        thread.join(60)
    assert not errors, errors
    return [Alert.from_json(m.value()) for m in messages]


def test_online_alerts_equal_offline(kafka_bootstrap: str, topics: Callable[..., dict[str, str]],
                                     streamer_settings: Callable[..., StreamerSettings],
                                     hdfs_records: list[RawRecord],
                                     hdfs_case: tuple[Path, Expected]) -> None:
    hdfs_bundle, hdfs_expected = hdfs_case
    t = topics(partitions=4)
    produce_replay(kafka_bootstrap, t["logs"], [r.value for r in hdfs_records])
    settings = streamer_settings(input_topics=[t["logs"]], alerts_topic=t["alerts"],
                                 dead_letter_topic=t["dlq"], bundle_path=hdfs_bundle,
                                 max_batch_size=32)
    app = StreamerApp(settings)
    started = time.monotonic()
    alerts = run_until_alerts(app, kafka_bootstrap, t["alerts"], len(hdfs_expected.alerts))
    elapsed = time.monotonic() - started

    got = {a.alert_id: a for a in alerts}
    assert len(got) == len(alerts), "an alert was committed twice"
    assert set(got) == set(hdfs_expected.alerts)
    for alert_id, score in hdfs_expected.alerts.items():
        assert abs(got[alert_id].score - score) <= 1e-5
    assert app.summary.windows == hdfs_expected.windows
    assert app.summary.dead_letters == 0
    # Every alert says where its records are, and they are all in the log topic.
    sample = alerts[0]
    assert sample.records and all(r.topic == t["logs"] for r in sample.records)
    assert 0 < len(sample.raw_lines) <= settings.max_raw_lines_per_alert
    assert sample.model_version and sample.threshold == pytest.approx(app._scorer.threshold)
    print(f"\n{len(alerts)} alerts of {hdfs_expected.windows} windows in {elapsed:.1f}s; "
          f"cache hit rate {app.summary.cache_hit_rate:.2f}")


def test_regex_subscription(kafka_bootstrap: str, topics: Callable[..., dict[str, str]],
                            streamer_settings: Callable[..., StreamerSettings],
                            hdfs_records: list[RawRecord], hdfs_bundle: Path,
                            hdfs_expected: Expected) -> None:
    t = topics(partitions=2)
    records = hdfs_records[:2000]
    produce_replay(kafka_bootstrap, t["logs"], [r.value for r in records])
    settings = streamer_settings(input_topic_regex=f"^{t['logs']}$", alerts_topic=t["alerts"],
                                 dead_letter_topic=t["dlq"], bundle_path=hdfs_bundle)
    app = StreamerApp(settings)
    from tests.integration.streamer.conftest import offline_expected

    expected = offline_expected(hdfs_bundle, records)
    alerts = run_until_alerts(app, kafka_bootstrap, t["alerts"], len(expected.alerts))
    assert {a.alert_id for a in alerts} == set(expected.alerts)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_online_alerts_equal_offline_trained_bundle(
        kafka_bootstrap: str, topics: Callable[..., dict[str, str]],
        streamer_settings: Callable[..., StreamerSettings], hdfs_records: list[RawRecord],
        trained_bundle: Path) -> None:
    """The same parity with a real trained and exported bundle (fp32: dynamic int8 computes
    activation scales per batch, so an int8 score depends on its batch-mates). The threshold
    is re-set through ``threshold_override`` so that about 20% of windows alert."""
    from logprompt.bundle import load_bundle
    from logprompt.datasets import cut_windows
    from tests.integration.streamer.conftest import gap_threshold, offline_expected

    records = hdfs_records[:3000]
    scorer = load_bundle(trained_bundle, execution_provider="cpu", variant="fp32")
    windows = cut_windows(scorer.pipeline_config, scorer.table, records)
    threshold = gap_threshold([float(x) for x in scorer.score_windows(windows)], 0.2)
    expected = offline_expected(trained_bundle, records, threshold, variant="fp32")
    assert expected.alerts
    t = topics(partitions=3)
    produce_replay(kafka_bootstrap, t["logs"], [r.value for r in records])
    app = StreamerApp(streamer_settings(
        input_topics=[t["logs"]], alerts_topic=t["alerts"], dead_letter_topic=t["dlq"],
        bundle_path=trained_bundle, bundle_variant="fp32", threshold_override=threshold))
    alerts = run_until_alerts(app, kafka_bootstrap, t["alerts"], len(expected.alerts),
                              timeout_s=300)
    got = {a.alert_id: a.score for a in alerts}
    assert len(got) == len(alerts)
    assert set(got) == set(expected.alerts)
    for alert_id, score in expected.alerts.items():
        assert abs(got[alert_id] - score) <= 1e-5
    assert all(a.model_version == scorer.model_version for a in alerts)
