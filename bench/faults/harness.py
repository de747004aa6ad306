"""Kafka and process plumbing of the fault suite: topics, a paced replay, streamer processes
under a small supervisor, "is the group done", and reading the committed alerts.

Everything runs on loopback against a real broker; nothing here mocks Kafka.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from logprompt.alerts import Alert
from logprompt.local_kafka import LocalKafkaBroker
from logprompt.local_kafka.broker import free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Cluster:
    """Where the scenarios run. ``broker`` is set when we own the broker (it can be killed)."""

    bootstrap: str
    broker: LocalKafkaBroker | None = None


@dataclass(frozen=True)
class Topics:
    logs: str
    alerts: str
    dlq: str
    partitions: int


def create_topics(bootstrap: str, partitions: int) -> Topics:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    tag = uuid.uuid4().hex[:10]
    t = Topics(f"faults-logs-{tag}", f"faults-alerts-{tag}", f"faults-dlq-{tag}", partitions)
    specs = [NewTopic(t.logs, partitions, 1), NewTopic(t.alerts, 3, 1), NewTopic(t.dlq, 1, 1)]
    for future in admin.create_topics(specs).values():
        future.result(timeout=60)
    return t


def delete_topics(bootstrap: str, t: Topics) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics([t.logs, t.alerts, t.dlq]).values():
        with contextlib.suppress(Exception):  # cleanup must not fail a run
            future.result(timeout=30)


def paced_replay(bootstrap: str, topic: str, values: Sequence[bytes], keys: Sequence[bytes],
                 seconds: float) -> threading.Thread:
    """Produce ``values`` (keyed, so a source stays in one partition) evenly over ``seconds``
    on a thread. Idempotent with a long delivery timeout: a broker restart mid-replay must
    neither lose nor duplicate input, else the reference would be wrong, not the streamer."""
    def target() -> None:
        # log_level 2: not the connection-refused line every 50 ms while the broker is down
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 10, "log_level": 2,
                             "enable.idempotence": True, "message.timeout.ms": 180_000})
        steps = max(1, int(seconds / 0.05))
        size = -(-len(values) // steps)
        start = time.monotonic()
        for i in range(steps):
            for value, key in zip(values[i * size:(i + 1) * size], keys[i * size:(i + 1) * size],
                                  strict=True):
                while True:
                    try:
                        producer.produce(topic, value=value, key=key)
                        break
                    except BufferError:
                        producer.poll(0.05)
            producer.poll(0)
            delay = start + (i + 1) * seconds / steps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if producer.flush(180) != 0:
            raise RuntimeError("replay: records not delivered")

    thread = threading.Thread(target=target, name="replay", daemon=True)
    thread.start()
    return thread


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "faults-probe"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                for p in range(partitions)}
    finally:
        consumer.close()


def group_done(bootstrap: str, group: str, topic: str, ends: dict[int, int]) -> bool:
    """True when the group's committed offset of every partition is the partition's end: the
    streamer commits the next offset only once no window is open, so every alert of the input
    is then committed (an offset trails while a window is open)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in ends], timeout=10)
    except Exception:  # noqa: BLE001 - the broker may be restarting; ask again later
        return False
    finally:
        consumer.close()
    return all(tp.offset == ends[tp.partition] or (ends[tp.partition] == 0 and tp.offset < 0)
               for tp in committed)


def wait_stable(bootstrap: str, topic: str, partitions: int, timeout_s: float) -> bool:
    """Wait until no transaction is open on ``topic`` (last stable offset = high watermark), so
    a read_committed reader sees everything that will ever be committed there."""
    def marks(isolation: str) -> list[int]:
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "faults-probe",
                      "isolation.level": isolation})
        try:
            return [c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    for p in range(partitions)]
        finally:
            c.close()

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if marks("read_committed") == marks("read_uncommitted"):
                return True
        time.sleep(0.5)
    return False


def read_alerts(bootstrap: str, topic: str, partitions: int, timeout_s: float = 60.0
                ) -> list[Alert]:
    """Every committed alert of the topic (isolation.level=read_committed), read to the end."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"faults-reader-{uuid.uuid4().hex[:8]}",
        "isolation.level": "read_committed", "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    out: list[Alert] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + timeout_s
    try:
        while len(at_end) < partitions and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(msg.partition() or 0)
                continue
            at_end.discard(msg.partition() or 0)
            out.append(Alert.from_json(msg.value() or b""))
    finally:
        consumer.close()
    if len(at_end) < partitions:
        raise TimeoutError(f"alerts topic not read to its end within {timeout_s:.0f}s")
    return out


@dataclass
class StreamerSpec:
    """How to start one ``python -m streamer`` for a run (the same for every member)."""

    cluster: Cluster
    topics: Topics
    bundle: Path
    group: str
    log_dir: Path
    static: bool = False
    reload_interval_s: float = 3600.0
    extra_env: dict[str, str] = field(default_factory=dict)


# The liveness probe of k8s/base/deployment.yaml, faster: GET /healthz every PROBE_PERIOD_S,
# PROBE_FAILURES failures in a row (after the first success) and the member is SIGKILLed and
# restarted. /healthz fails when the consume loop has not turned for 30 s (a wedged process).
PROBE_PERIOD_S = 2.0
PROBE_FAILURES = 3


class StreamerProcess:
    """One streamer child process; its JSON logs go to a file (read by scenarios, kept for
    post-mortems). It serves /healthz on a loopback port for the liveness probe."""

    def __init__(self, spec: StreamerSpec, instance: str) -> None:
        self.instance = instance
        self.log_path = spec.log_dir / f"{instance}-{time.monotonic_ns()}.log"
        self.http_port = free_port()
        self.paused = False  # SIGSTOPped on purpose: not probed
        self.probe_ok = False  # answered healthy at least once
        self.probe_failures = 0
        self.next_probe = time.monotonic()
        env = {**os.environ, "LOGPROMPT_SESSION_TIMEOUT_MS": "6000",
               "LOGPROMPT_TRANSACTION_TIMEOUT_MS": "15000",
               "LOGPROMPT_STATIC_MEMBERSHIP": "true" if spec.static else "false",
               "LOGPROMPT_EXECUTION_PROVIDER": "cpu", "LOGPROMPT_MAX_BATCH_SIZE": "32",
               "LOGPROMPT_BUNDLE_RELOAD_INTERVAL_S": str(spec.reload_interval_s),
               "LOGPROMPT_INTRA_OP_THREADS": "1", "LOGPROMPT_HTTP_HOST": "127.0.0.1",
               **spec.extra_env}
        t = spec.topics
        cmd = [sys.executable, "-m", "streamer", "--bootstrap-servers", spec.cluster.bootstrap,
               "--input-topic", t.logs, "--alerts-topic", t.alerts, "--dead-letter-topic", t.dlq,
               "--group-id", spec.group, "--instance-id", instance,
               "--bundle-path", str(spec.bundle), "--idle-flush-s", "2",
               "--commit-interval-ms", "200", "--http-port", str(self.http_port),
               "--log-level", "INFO"]
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        self.expected_exit = False  # set when we stop it on purpose

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_bytes().splitlines():
            with contextlib.suppress(orjson.JSONDecodeError):
                event = orjson.loads(line)
                if isinstance(event, dict):
                    out.append(event)
        return out

    def logged(self, event: str) -> bool:
        return f'"event":"{event}"'.encode() in self.log_path.read_bytes() or any(
            e.get("event") == event for e in self.events())

    def signal(self, sig: signal.Signals) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        if sig in (signal.SIGSTOP, signal.SIGCONT):
            self.paused = sig == signal.SIGSTOP
            self.probe_failures = 0

    def live(self) -> bool:
        """One liveness probe (at most every PROBE_PERIOD_S): False once it has failed
        PROBE_FAILURES times in a row after having succeeded; a member still starting, or
        paused on purpose, counts as live."""
        now = time.monotonic()
        if self.paused or now < self.next_probe:
            return True
        self.next_probe = now + PROBE_PERIOD_S
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz",
                                        timeout=PROBE_PERIOD_S) as response:
                ok = response.status == 200
        except (urllib.error.URLError, OSError):
            ok = False
        if ok:
            self.probe_ok, self.probe_failures = True, 0
        elif self.probe_ok:
            self.probe_failures += 1
        return self.probe_failures < PROBE_FAILURES

    def kill9(self) -> None:
        self.expected_exit = True
        self.signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def terminate(self, timeout_s: float = 40.0) -> int:
        self.expected_exit = True
        self.signal(signal.SIGCONT)  # a stopped process cannot handle SIGTERM
        self.signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        self._log.close()
        return code


class Fleet:
    """The streamers of one run, under a supervisor: a member that exits without being asked
    (a fatal Kafka error, exit code 3) is restarted under the same name, as Kubernetes
    would. Restarts are counted and reported."""

    def __init__(self, spec: StreamerSpec) -> None:
        self.spec = spec
        self.members: dict[str, StreamerProcess] = {}
        self.history: list[StreamerProcess] = []
        self.restarts: list[tuple[str, int | str]] = []

    def start(self, instance: str) -> StreamerProcess:
        p = StreamerProcess(self.spec, instance)
        self.members[instance] = p
        self.history.append(p)
        return p

    def supervise(self) -> None:
        for name, p in list(self.members.items()):
            code = p.proc.poll()
            if code is not None and not p.expected_exit:
                self.restarts.append((name, code))
                self.start(name)
            elif code is None and not p.live():
                p.kill9()  # wedged: what the kubelet does when /healthz keeps failing
                self.restarts.append((name, "liveness"))
                self.start(name)

    def stop(self, instance: str) -> int:
        return self.members.pop(instance).terminate()

    def stop_all(self) -> dict[str, int]:
        return {name: self.members.pop(name).terminate() for name in list(self.members)}

    def kill_all(self) -> None:
        for p in self.history:
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait(10)

    def wait(self, seconds: float, until: Callable[[], bool] | None = None) -> bool:
        """Sleep up to ``seconds`` while supervising; True if ``until`` became true."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.supervise()
            if until is not None and until():
                return True
            time.sleep(0.2)
        return until is None

    def log_tail(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {p.log_path.name}\n" + p.log_path.read_text(errors="replace")[-chars:]
                         for p in self.history[-3:])
