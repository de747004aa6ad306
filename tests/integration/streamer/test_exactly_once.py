"""Exactly-once under kill -9 and under a consumer joining and leaving mid-stream.

The streamer runs as a real process (``python -m streamer``) while a producer replays the HDFS
slice over several seconds. The committed alerts (read_committed) must equal offline scoring:
none lost, none duplicated.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from logprompt.alerts import Alert
from logprompt.datasets import RawRecord
from tests.integration.streamer.conftest import (
    Expected,
    offline_expected,
    produce_replay,
    read_topic,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[3]


class StreamerProcess:
    """One ``python -m streamer`` child; its JSON logs go to a file for post-mortems."""

    def __init__(self, bootstrap: str, t: dict[str, str], bundle: Path, group: str,
                 instance: str, log_dir: Path, static: bool) -> None:
        self.log_path = log_dir / f"{instance}-{time.monotonic_ns()}.log"
        env = {**os.environ, "LOGPROMPT_SESSION_TIMEOUT_MS": "6000",
               "LOGPROMPT_TRANSACTION_TIMEOUT_MS": "15000",
               "LOGPROMPT_STATIC_MEMBERSHIP": "true" if static else "false",
               "LOGPROMPT_EXECUTION_PROVIDER": "cpu", "LOGPROMPT_MAX_BATCH_SIZE": "16"}
        cmd = [sys.executable, "-m", "streamer", "--bootstrap-servers", bootstrap,
               "--input-topic", t["logs"], "--alerts-topic", t["alerts"],
               "--dead-letter-topic", t["dlq"], "--group-id", group, "--instance-id", instance,
               "--bundle-path", str(bundle), "--idle-flush-s", "3", "--commit-interval-ms", "200",
               "--http-port", "-1", "--log-level", "INFO"]
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def terminate(self, timeout_s: float = 40.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        self._log.close()
        return code


@pytest.fixture
def processes() -> Iterator[list[StreamerProcess]]:
    started: list[StreamerProcess] = []
    yield started
    for p in started:  # never leave a consumer running
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait(10)


def slow_replay(bootstrap: str, topic: str, values: list[bytes], seconds: float
                ) -> threading.Thread:
    """Produce the values in chunks spread over ``seconds`` on a thread."""
    chunks = 20

    def target() -> None:
        size = -(-len(values) // chunks)
        for i in range(chunks):
            produce_replay(bootstrap, topic, values[i * size:(i + 1) * size])
            time.sleep(seconds / chunks)

    thread = threading.Thread(target=target)
    thread.start()
    return thread


def check_alerts(bootstrap: str, alerts_topic: str, expected: Expected) -> None:
    messages = read_topic(bootstrap, alerts_topic, expect=len(expected.alerts), quiet_s=6.0,
                          timeout_s=120.0)
    alerts = [Alert.from_json(m.value()) for m in messages]
    counts = Counter(a.alert_id for a in alerts)
    duplicated = {k: v for k, v in counts.items() if v > 1}
    assert not duplicated, f"{len(duplicated)} alerts committed more than once"
    missing = set(expected.alerts) - set(counts)
    extra = set(counts) - set(expected.alerts)
    assert not missing and not extra, f"{len(missing)} missing, {len(extra)} unexpected"
    for a in alerts:
        assert abs(a.score - expected.alerts[a.alert_id]) <= 1e-5
    # Every alert's Kafka key is its source key (one source's alerts stay ordered).
    assert all(m.key() == Alert.from_json(m.value()).kafka_key() for m in messages)


@pytest.mark.parametrize("seed", [1, 2])
def test_kill9_restarts_commit_each_alert_once(
        seed: int, kafka_bootstrap: str, topics: Callable[..., dict[str, str]],
        make_group: Callable[[], str], hdfs_records: list[RawRecord],
        hdfs_case: tuple[Path, Expected], processes: list[StreamerProcess],
        tmp_path: Path) -> None:
    hdfs_bundle, hdfs_expected = hdfs_case
    rng = random.Random(seed)
    t = topics(partitions=4)
    group = make_group()
    replay = slow_replay(kafka_bootstrap, t["logs"], [r.value for r in hdfs_records], 14.0)
    kills = []
    for _ in range(4):
        p = StreamerProcess(kafka_bootstrap, t, hdfs_bundle, group, "eo-a", tmp_path, True)
        processes.append(p)
        delay = rng.uniform(2.5, 6.0)  # start-up (imports, bundle) takes about 2-3 s
        time.sleep(delay)
        p.kill9()
        kills.append(round(delay, 2))
    replay.join()
    final = StreamerProcess(kafka_bootstrap, t, hdfs_bundle, group, "eo-a", tmp_path, True)
    processes.append(final)
    print(f"\nseed {seed}: kill -9 after {kills} s")
    check_alerts(kafka_bootstrap, t["alerts"], hdfs_expected)
    assert final.terminate() == 0, final.log_path.read_text()[-3000:]


def test_consumer_joins_and_leaves_mid_stream(
        kafka_bootstrap: str, topics: Callable[..., dict[str, str]],
        make_group: Callable[[], str], hdfs_records: list[RawRecord],
        hdfs_sliding_bundle: Path, processes: list[StreamerProcess], tmp_path: Path) -> None:
    hdfs_bundle = hdfs_sliding_bundle
    hdfs_expected = offline_expected(hdfs_bundle, hdfs_records)
    t = topics(partitions=4)
    group = make_group()
    replay = slow_replay(kafka_bootstrap, t["logs"], [r.value for r in hdfs_records], 16.0)
    a = StreamerProcess(kafka_bootstrap, t, hdfs_bundle, group, "jl-a", tmp_path, False)
    processes.append(a)
    time.sleep(4.0)
    b = StreamerProcess(kafka_bootstrap, t, hdfs_bundle, group, "jl-b", tmp_path, False)
    processes.append(b)
    # b joins: a cooperative rebalance moves some partitions to it; it works a while.
    deadline = time.monotonic() + 40
    while "partitions assigned" not in b.log_path.read_text():
        assert time.monotonic() < deadline, "the second consumer never got partitions"
        time.sleep(0.5)
    time.sleep(3.0)
    assert b.terminate() == 0, b.log_path.read_text()[-3000:]  # b leaves: partitions go back
    replay.join()
    check_alerts(kafka_bootstrap, t["alerts"], hdfs_expected)
    assert a.terminate() == 0, a.log_path.read_text()[-3000:]
    assert "partitions revoked" in a.log_path.read_text()
