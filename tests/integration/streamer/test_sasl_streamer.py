"""The streamer against a secured cluster (SASL/SCRAM-SHA-512 over TLS, the project's own broker):
it consumes and produces with credentials from environment variables and from secret files,
refuses wrong credentials at once with a clear error, and never writes a secret to its logs or
its /metrics output."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from logprompt.alerts import Alert
from logprompt.datasets import RawRecord, cut_windows, learn_templates
from logprompt.local_kafka.broker import free_port
from logprompt.local_kafka.security import MECHANISM, TlsFiles, sasl_ssl_broker
from logprompt.presets import preset
from logprompt.synthetic import generate, json_lines
from logprompt.windows import Position
from tests.integration.streamer.conftest import offline_expected

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[3]
USER, PASSWORD = "logprompt-streamer", "Zq7-unlikely-secret-9xK"
WRONG = "Wr0ng-unlikely-secret-4Pv"


@dataclass(frozen=True)
class Secure:
    bootstrap: str
    tls: TlsFiles

    def client(self, **extra: str) -> dict[str, str]:
        return {"bootstrap.servers": self.bootstrap, "security.protocol": "SASL_SSL",
                "sasl.mechanism": MECHANISM, "sasl.username": USER, "sasl.password": PASSWORD,
                "ssl.ca.location": str(self.tls.ca_pem), **extra}


@dataclass(frozen=True)
class Case:
    values: list[bytes]
    keys: list[bytes]
    bundle: Path
    alerts: dict[str, float]


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    broker, tls = sasl_ssl_broker(Path(tmp_path_factory.mktemp("sasl-streamer")),
                                  {USER: PASSWORD})
    broker.start()
    try:
        yield Secure(f"localhost:{broker.port}", tls)
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    """Synthetic JSON service logs and a probe bundle that alerts on about 20% of windows."""
    from streamer.testing import build_calibrated_probe_bundle

    lines, _ = generate(n_sessions=150, seed=5)
    values = list(json_lines(lines))
    records = [RawRecord(v, Position("x", 0, i)) for i, v in enumerate(values)]
    config = preset("synthetic")
    table = learn_templates(config, records[: len(records) // 2])
    bundle = build_calibrated_probe_bundle(
        tmp_path_factory.mktemp("sasl-bundle") / "probe", config, table,
        cut_windows(config, table, records), alert_share=0.2)
    expected = offline_expected(bundle, records)
    assert expected.alerts
    keys = [orjson.loads(v)["source"].encode() for v in values]
    return Case(values, keys, bundle, expected.alerts)


def _topics(secure: Secure) -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    names = {"logs": f"sec-logs-{tag}", "alerts": f"sec-alerts-{tag}", "dlq": f"sec-dlq-{tag}"}
    admin = AdminClient(secure.client())
    futures = admin.create_topics([NewTopic(names["logs"], 2, 1), NewTopic(names["alerts"], 3, 1),
                                   NewTopic(names["dlq"], 1, 1)])
    for future in futures.values():
        future.result(timeout=60)
    return names


def _produce(secure: Secure, topic: str, case: Case) -> None:
    producer = Producer(secure.client(**{"linger.ms": "20"}))
    for value, key in zip(case.values, case.keys, strict=True):
        producer.produce(topic, value=value, key=key)
    assert producer.flush(60) == 0


def _read_alerts(secure: Secure, topic: str, expect: int, timeout_s: float) -> list[Alert]:
    consumer = Consumer(secure.client(**{
        "group.id": f"reader-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest",
        "isolation.level": "read_committed", "enable.auto.commit": "false"}))
    consumer.subscribe([topic])
    got: list[Alert] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < expect and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                got.append(Alert.from_json(msg.value() or b""))
    finally:
        consumer.close()
    return got


def _streamer(secure: Secure, topics: dict[str, str], bundle: Path, env: dict[str, str],
              log: Path, http_port: int = -1) -> subprocess.Popen[bytes]:
    """``python -m streamer`` with only its Kafka connection in the environment; everything
    it prints (JSON logs and librdkafka's own stderr lines) goes to ``log``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("LOGPROMPT_")}
    base.update({
        "LOGPROMPT_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "LOGPROMPT_KAFKA__SASL_MECHANISM": MECHANISM,
        "LOGPROMPT_KAFKA__SASL_USERNAME": USER,
        "LOGPROMPT_EXECUTION_PROVIDER": "cpu", "LOGPROMPT_SESSION_TIMEOUT_MS": "6000",
        "LOGPROMPT_TRANSACTION_TIMEOUT_MS": "20000", "LOGPROMPT_INTRA_OP_THREADS": "1",
        **env,
    })
    cmd = [sys.executable, "-m", "streamer", "--bootstrap-servers", secure.bootstrap,
           "--input-topic", topics["logs"], "--alerts-topic", topics["alerts"],
           "--dead-letter-topic", topics["dlq"], "--group-id", f"sec-{uuid.uuid4().hex[:8]}",
           "--instance-id", "sec-0", "--bundle-path", str(bundle), "--idle-flush-s", "2",
           "--commit-interval-ms", "200", "--http-port", str(http_port), "--log-level", "DEBUG"]
    with log.open("wb") as out:
        return subprocess.Popen(cmd, cwd=REPO, env=base, stdout=out, stderr=subprocess.STDOUT)


def _metrics(port: int, timeout_s: float = 60.0) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                return str(r.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.parametrize("source", ["environment", "files"])
def test_streamer_over_sasl_ssl(secure: Secure, case: Case, tmp_path: Path, source: str) -> None:
    if source == "environment":
        env = {"LOGPROMPT_KAFKA__SASL_PASSWORD": PASSWORD,
               "LOGPROMPT_KAFKA__SSL_CA_LOCATION": str(secure.tls.ca_pem)}
    else:  # as mounted from a Kubernetes Secret: one file per key, trailing newline
        secrets = tmp_path / "secrets"
        secrets.mkdir()
        (secrets / "sasl-password").write_text(PASSWORD + "\n")
        (secrets / "ca.crt").write_bytes(secure.tls.ca_pem.read_bytes())
        env = {"LOGPROMPT_KAFKA__SASL_PASSWORD_FILE": str(secrets / "sasl-password"),
               "LOGPROMPT_KAFKA__SSL_CA_LOCATION": str(secrets / "ca.crt")}
    topics = _topics(secure)
    _produce(secure, topics["logs"], case)
    port = free_port()
    log = tmp_path / "streamer.log"
    proc = _streamer(secure, topics, case.bundle, env, log, http_port=port)
    try:
        alerts = _read_alerts(secure, topics["alerts"], len(case.alerts), timeout_s=150)
        metrics = _metrics(port)
    finally:
        proc.terminate()
        code = proc.wait(60)
    output = log.read_text(errors="replace")
    assert code == 0, output[-3000:]
    assert {a.alert_id for a in alerts} == set(case.alerts)
    assert len(alerts) == len(case.alerts)
    assert "logprompt_records" in metrics  # the scrape worked
    # The logs did describe the connection (so the grep below looked at real content).
    assert '"sasl.password":"***"' in output.replace(" ", "")
    assert USER in output
    for text, where in ((output, "logs"), (metrics, "/metrics")):
        assert PASSWORD not in text, f"the SASL password appears in the {where}"


def test_wrong_password_fails_fast(secure: Secure, case: Case, tmp_path: Path) -> None:
    topics = _topics(secure)
    log = tmp_path / "streamer.log"
    started = time.monotonic()
    proc = _streamer(secure, topics, case.bundle, {
        "LOGPROMPT_KAFKA__SASL_PASSWORD": WRONG,
        "LOGPROMPT_KAFKA__SSL_CA_LOCATION": str(secure.tls.ca_pem)}, log)
    try:
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    output = log.read_text(errors="replace")
    assert code == 4, output[-3000:]
    assert time.monotonic() - started < 45  # start-up included; the check itself takes seconds
    assert "kafka authentication failed" in output and "Authentication failed" in output
    assert WRONG not in output

