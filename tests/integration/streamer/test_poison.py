"""Poison records go to the dead-letter topic with their reasons, inside the transaction, and
the alerts of the good records are unchanged."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from logprompt.alerts import Alert
from logprompt.datasets import RawRecord, cut_windows, learn_templates
from logprompt.presets import preset
from logprompt.synthetic import generate, json_lines
from logprompt.windows import Position
from streamer import dead_letter as dl
from streamer.app import StreamerApp
from streamer.settings import StreamerSettings
from tests.integration.streamer.conftest import offline_expected, produce_replay, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

TEN_MB = 10 * 1024 * 1024
BIG = {"max.message.bytes": str(TEN_MB + 1_000_000)}


def _run(app: StreamerApp, bootstrap: str, t: dict[str, str], alerts: int, dead: int
         ) -> tuple[list[Alert], list]:
    thread = threading.Thread(target=app.run, kwargs={"max_seconds": 120})
    thread.start()
    try:
        got = read_topic(bootstrap, t["alerts"], expect=alerts, quiet_s=4.0, timeout_s=120)
        dead_letters = read_topic(bootstrap, t["dlq"], expect=dead, quiet_s=1.0, timeout_s=30)
    finally:
        app.request_stop("test done")
        thread.join(60)
    return [Alert.from_json(m.value()) for m in got], dead_letters


def _headers(message) -> dict[str, bytes]:  # noqa: ANN001 - confluent_kafka.Message
    return dict(message.headers() or [])


def test_poison_text_records(kafka_bootstrap: str, topics: Callable[..., dict[str, str]],
                             streamer_settings: Callable[..., StreamerSettings],
                             hdfs_records: list[RawRecord], hdfs_bundle: Path) -> None:
    good = [r.value for r in hdfs_records[:3000]]
    poison = {
        b"081109 203615 148 INFO dfs.DataNode: bad \xff\xfe blk_1": "invalid_utf8",
        b"081109 203615 148 INFO blk_2 " + b"x" * TEN_MB: "too_long",
        b"": "empty",
        b"   \n": "empty",
    }
    values = list(good)
    for i, value in enumerate(poison):
        values.insert(500 + 700 * i, value)
    t = topics(partitions=3, log_config=BIG)
    produce_replay(kafka_bootstrap, t["logs"], values,
                   extra={"message.max.bytes": TEN_MB + 1_000_000})
    records = [RawRecord(v, Position("x", 0, i)) for i, v in enumerate(values)]
    expected = offline_expected(hdfs_bundle, records)
    assert expected.alerts == offline_expected(
        hdfs_bundle, [RawRecord(v, Position("x", 0, i)) for i, v in enumerate(good)]).alerts

    app = StreamerApp(streamer_settings(input_topics=[t["logs"]], alerts_topic=t["alerts"],
                                        dead_letter_topic=t["dlq"], bundle_path=hdfs_bundle))
    alerts, dead = _run(app, kafka_bootstrap, t, len(expected.alerts), len(poison))

    assert {a.alert_id: round(a.score, 5) for a in alerts} == {
        k: round(v, 5) for k, v in expected.alerts.items()}
    assert len(dead) == len(poison)
    reasons = sorted(_headers(m)[dl.REASON].decode() for m in dead)
    assert reasons == sorted(poison.values())
    for m in dead:
        h = _headers(m)
        assert h[dl.TOPIC].decode() == t["logs"]
        assert int(h[dl.OFFSET]) >= 0 and int(h[dl.PARTITION]) in range(3)
        assert int(h[dl.TIMESTAMP]) > 0 and h[dl.DETAIL]
        if h[dl.REASON] == b"too_long":
            assert int(h[dl.ORIGINAL_BYTES]) > TEN_MB
            assert len(m.value()) == app.settings.dead_letter_max_value_bytes
        elif h[dl.REASON] == b"invalid_utf8":
            assert m.value() in poison
    assert app.metrics.decode_errors.labels("empty")._value.get() == 2


def test_poison_json_records(kafka_bootstrap: str, topics: Callable[..., dict[str, str]],
                             streamer_settings: Callable[..., StreamerSettings],
                             tmp_path: Path) -> None:
    from streamer.testing import build_calibrated_probe_bundle

    lines, _ = generate(n_sessions=300, seed=7)
    good = list(json_lines(lines))
    config = preset("json")
    train = [RawRecord(v, Position("x", 0, i)) for i, v in enumerate(good)]
    table = learn_templates(config, train[: len(train) // 2])
    bundle = build_calibrated_probe_bundle(tmp_path / "json-probe", config, table,
                                           cut_windows(config, table, train), alert_share=0.2)
    poison = {
        b'{"message": "unterminated': "invalid_json",
        b"[1, 2, 3]": "not_an_object",
        b'{"source": "req-x", "timestamp": 1700000000}': "missing_field",
        b'{"message": 42, "source": "req-x"}': "bad_field_type",
        b'{"message": "ok", "source": "req-x", "timestamp": "yesterday"}': "bad_timestamp",
    }
    values = list(good)
    for i, value in enumerate(poison):
        values.insert(100 + 300 * i, value)
    t = topics(partitions=3)
    produce_replay(kafka_bootstrap, t["logs"], values, key=re.compile(rb'"source":"[^"]+"'))
    expected = offline_expected(bundle, [RawRecord(v, Position("x", 0, i))
                                         for i, v in enumerate(values)])
    assert expected.alerts
    app = StreamerApp(streamer_settings(input_topics=[t["logs"]], alerts_topic=t["alerts"],
                                        dead_letter_topic=t["dlq"], bundle_path=bundle))
    alerts, dead = _run(app, kafka_bootstrap, t, len(expected.alerts), len(poison))
    assert {a.alert_id for a in alerts} == set(expected.alerts)
    assert sorted(_headers(m)[dl.REASON].decode() for m in dead) == sorted(poison.values())
    assert {m.value() for m in dead} == set(poison)
