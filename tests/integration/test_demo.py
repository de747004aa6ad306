"""The demo's whole path on a tiny configuration, against the real broker: train a few steps
on synthetic logs, export, run the streamer process, replay, read alerts, and check that the
streamed evaluation equals the offline one on the same windows."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

from demo.run import DemoConfig, DemoError, run_demo


@pytest.mark.slow
def test_demo_end_to_end_on_synthetic_logs(kafka_bootstrap: str, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    config = DemoConfig(
        workdir=tmp_path / "demo", bootstrap=kafka_bootstrap, dataset="synthetic",
        synthetic_sessions=1000, train_max_steps=10, train_ensemble=1, max_length=64,
        timeout_s=240,
        topics={"logs": f"demo-logs-{run}", "alerts": f"demo-alerts-{run}",
                "dead_letter": f"demo-dlq-{run}"},
    )
    summary = run_demo(config)
    assert summary.lines > 0 and summary.streaming["windows"] == summary.offline["windows"] > 0
    for metric in ("precision", "recall", "f1", "predicted"):
        assert summary.streaming[metric] == summary.offline[metric]
    assert summary.streaming["unmatched_alerts"] == 0
    assert summary.alerts == summary.offline["predicted"] > 0
    report = (summary.report / "report.md").read_text()
    assert "streamed alerts" in report
    for png in ("alerts_over_time.png", "score_distribution.png", "throughput.png"):
        assert (summary.report / png).stat().st_size > 1000


def test_demo_refuses_topics_holding_an_earlier_run(kafka_bootstrap: str, tmp_path: Path) -> None:
    """A new consumer group would replay the old records too and count their alerts twice."""
    run = uuid.uuid4().hex[:8]
    topics = {"logs": f"demo-logs-{run}", "alerts": f"demo-alerts-{run}",
              "dead_letter": f"demo-dlq-{run}"}
    config = DemoConfig(workdir=tmp_path / "demo", bootstrap=kafka_bootstrap,
                        dataset="synthetic", topics=topics)
    from demo.kafka_io import ensure_topics

    ensure_topics(kafka_bootstrap, {topics["alerts"]: 1})
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(topics["alerts"], b"{}")
    producer.flush(10)
    with pytest.raises(DemoError, match=topics["alerts"]):
        run_demo(config)
    assert not (tmp_path / "demo" / "checkpoint").exists()  # refused before any training
