"""Fixtures of the streamer's broker tests: an HDFS slice, a real bundle around it, offline
expectations, and helpers to produce a replay and read committed alerts."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from logprompt.datasets import RawRecord, cut_windows, learn_templates, read_lines
from logprompt.presets import preset
from streamer.settings import StreamerSettings

HDFS_LINES = 10_000
BLOCK = re.compile(rb"blk_-?\d+")


@dataclass(frozen=True)
class Expected:
    """What offline scoring with the bundle gives: alert id -> score."""

    alerts: dict[str, float]
    windows: int


@pytest.fixture(scope="session")
def hdfs_records(datasets_root: Path) -> list[RawRecord]:
    path = datasets_root / "hdfs" / "HDFS_2pct.log.gz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    return list(read_lines(path, limit=HDFS_LINES))


@pytest.fixture(scope="session")
def hdfs_bundle(hdfs_records: list[RawRecord], tmp_path_factory: pytest.TempPathFactory
                ) -> Path:
    """A real bundle (serving format, ONNX graph, MiniLM tokenizer) for the HDFS preset whose
    threshold makes about 20% of the slice's windows alert (see streamer.testing)."""
    from streamer.testing import build_calibrated_probe_bundle

    config = preset("hdfs")
    table = learn_templates(config, hdfs_records[: HDFS_LINES // 2])
    windows = cut_windows(config, table, hdfs_records)
    out = tmp_path_factory.mktemp("bundle") / "hdfs-probe"
    return build_calibrated_probe_bundle(out, config, table, windows, alert_share=0.2)


@pytest.fixture(scope="session")
def hdfs_sliding_bundle(hdfs_records: list[RawRecord],
                        tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HDFS pipeline with overlapping sliding windows per block (size 10, step 5): windows
    close all the time, so committed offsets advance and replays start mid-topic."""
    from logprompt.windows import WindowConfig
    from streamer.testing import build_calibrated_probe_bundle

    config = preset("hdfs").model_copy(update={
        "name": "hdfs_sliding",
        "window": WindowConfig(kind="sliding", size=10, step=5, max_events=10)})
    table = learn_templates(config, hdfs_records[: HDFS_LINES // 2])
    windows = cut_windows(config, table, hdfs_records)
    out = tmp_path_factory.mktemp("bundle") / "hdfs-sliding-probe"
    return build_calibrated_probe_bundle(out, config, table, windows, alert_share=0.2, seed=1)


@pytest.fixture(scope="session", params=["session", "sliding"])
def hdfs_case(request: pytest.FixtureRequest, hdfs_records: list[RawRecord]
              ) -> tuple[Path, Expected]:
    """(bundle, offline expectation) for HDFS session windows and for sliding windows."""
    name = "hdfs_bundle" if request.param == "session" else "hdfs_sliding_bundle"
    bundle: Path = request.getfixturevalue(name)
    return bundle, offline_expected(bundle, hdfs_records)


@pytest.fixture(scope="session")
def hdfs_expected(hdfs_bundle: Path, hdfs_records: list[RawRecord]) -> Expected:
    return offline_expected(hdfs_bundle, hdfs_records)


def offline_expected(bundle: Path, records: list[RawRecord], threshold: float | None = None,
                     variant: str = "auto") -> Expected:
    """Offline scoring: the same bundle, cut_windows over the records, score >= threshold
    (the bundle's unless given)."""
    from logprompt.bundle import load_bundle

    scorer = load_bundle(bundle, execution_provider="cpu", variant=variant)  # type: ignore[arg-type]
    windows = cut_windows(scorer.pipeline_config, scorer.table, records)
    scores = scorer.score_windows(windows)
    cut = scorer.threshold if threshold is None else threshold
    alerts = {w.window_id: float(s) for w, s in zip(windows, scores, strict=True) if s >= cut}
    return Expected(alerts, len(windows))


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory: pytest.TempPathFactory, datasets_root: Path) -> Path:
    """A real bundle: a 2-step training run on hdfs_2k, exported by export_bundle."""
    pytest.importorskip("torch")
    try:
        from export.exporter import export_bundle
        from training.config import TrainConfig
        from training.train import train
    except ImportError as exc:  # the training/export packages are optional here
        pytest.skip(f"training/export not importable: {exc}")
    out = tmp_path_factory.mktemp("trained")
    checkpoint = train(TrainConfig(dataset="hdfs_2k", output=out / "ckpt", max_steps=2,
                                   min_steps=1, epochs=1, batch_size=8, progress=False,
                                   resumable=False, evaluate_test=False, device="cpu",
                                   ensemble=1))
    return export_bundle(checkpoint, out / "bundle", validation_windows=32)


def gap_threshold(scores: list[float], share: float, min_gap: float = 1e-5) -> float:
    """A threshold in a gap (wider than ``min_gap``, far above fp32 batch-padding noise)
    between distinct scores, near the wanted alert share."""
    import numpy as np

    ordered = np.sort(np.asarray(scores))
    unique = np.unique(ordered)
    gaps = [(lo + hi) / 2 for lo, hi in zip(unique[:-1], unique[1:], strict=True)
            if hi - lo > min_gap]
    if not gaps:
        pytest.skip("the model gives no distinct scores on these windows")
    return float(min(gaps, key=lambda g: abs(float(np.mean(ordered >= g)) - share)))


def produce_replay(bootstrap: str, topic: str, values: list[bytes],
                   extra: dict[str, Any] | None = None, key: re.Pattern[bytes] = BLOCK) -> None:
    """Produce lines keyed by their source (default: the HDFS block id), so one source stays
    in one partition, as the streamer requires of producers."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, **(extra or {})})
    for value in values:
        match = key.search(value)
        while True:
            try:
                producer.produce(topic, value=value, key=match.group(0) if match else None)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0


def read_topic(bootstrap: str, topic: str, expect: int | None = None, quiet_s: float = 3.0,
               timeout_s: float = 60.0, read_committed: bool = True) -> list[Any]:
    """All messages of a topic from the beginning: until ``expect`` arrived and nothing more
    came for ``quiet_s``, or, without ``expect``, nothing came for ``quiet_s``."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
        "isolation.level": "read_committed" if read_committed else "read_uncommitted",
        "enable.partition.eof": False,
    })
    consumer.subscribe([topic])
    out: list[Any] = []
    deadline = time.monotonic() + timeout_s
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                if (expect is None or len(out) >= expect) and time.monotonic() - last > quiet_s:
                    break
                continue
            if msg.error():
                continue
            out.append(msg)
            last = time.monotonic()
    finally:
        consumer.close()
    return out


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int
                      ) -> list[TopicPartition]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        return list(consumer.committed([TopicPartition(topic, p) for p in range(partitions)],
                                       timeout=10))
    finally:
        consumer.close()


@pytest.fixture
def streamer_settings(kafka_bootstrap: str, make_group: Callable[[], str]
                      ) -> Callable[..., StreamerSettings]:
    def factory(**overrides: Any) -> StreamerSettings:
        values: dict[str, Any] = {
            "kafka": {"bootstrap_servers": kafka_bootstrap},
            "group_id": make_group(),
            "instance_id": f"test-{uuid.uuid4().hex[:8]}",
            "http_port": -1,
            "idle_flush_s": 2.0,
            "commit_interval_ms": 200,
            "session_timeout_ms": 6000,
            "transaction_timeout_ms": 20000,
            "execution_provider": "cpu",
            "log_level": "WARNING",
            "bundle_reload_interval_s": 3600.0,
        }
        values.update(overrides)
        return StreamerSettings.model_validate(values)

    return factory


@pytest.fixture
def topics(make_topic: Callable[..., str]) -> Iterator[Callable[..., dict[str, str]]]:
    def factory(partitions: int = 3, log_config: dict[str, str] | None = None
                ) -> dict[str, str]:
        return {
            "logs": make_topic(partitions=partitions, prefix="logs", config=log_config),
            "alerts": make_topic(partitions=3, prefix="alerts"),
            "dlq": make_topic(partitions=1, prefix="dlq"),
        }

    yield factory
