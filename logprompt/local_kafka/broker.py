"""Start, wait for and stop a single-node KRaft broker+controller on 127.0.0.1."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

_POM = Path(__file__).with_name("pom.xml")
_DEFAULT_CACHE = Path(os.environ.get("LOGPROMPT_CACHE", Path.home() / ".cache" / "logprompt"))


class BrokerError(RuntimeError):
    """The local broker could not be prepared, started or stopped; the message says what to do."""


def kafka_version() -> str:
    """The Apache Kafka version the bundled pom resolves."""
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", _POM.read_text())
    if match is None:
        raise BrokerError(f"no <kafka.version> in {_POM}")
    return match.group(1)


def _require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise BrokerError(f"'{tool}' is not on PATH: {hint}")
    return path


def ensure_jars(cache_dir: Path = _DEFAULT_CACHE) -> Path:
    """Return the folder of the broker's jars, resolving them with Maven the first time."""
    libs = cache_dir / f"kafka-{kafka_version()}" / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    mvn = _require("mvn", "install Apache Maven (Debian: apt-get install maven) to fetch Kafka's jars")
    tmp = libs.with_name("libs.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [
        mvn, "-q", "-B", "-f", str(_POM), "dependency:copy-dependencies",
        f"-DoutputDirectory={tmp}", "-DincludeScope=runtime",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise BrokerError(
            "Maven could not resolve Kafka's jars from Maven Central:\n"
            + (result.stdout + result.stderr)[-4000:]
        )
    # slf4j 1.x arrives transitively; the 2.x pinned in the pom must win on the classpath.
    for old in tmp.glob("slf4j-api-1.*.jar"):
        old.unlink()
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    marker.touch()
    return libs


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.kafka-controller.name = state.change.logger
logger.kafka-controller.level = WARN
"""


@dataclass
class LocalKafkaBroker:
    """One broker+controller process. ``start()`` formats storage on first use of ``data_dir``.

    Replication factors are 1 for the offsets and transaction-state topics, so that consumer
    groups and transactions work on a single node.
    """

    data_dir: Path
    port: int = 0
    controller_port: int = 0
    heap: str = "768m"
    extra_properties: dict[str, str] = field(default_factory=dict)
    listeners: str | None = None  # full override, e.g. a SASL_SSL listener (security tests)
    advertised_listeners: str | None = None
    protocol_map: str | None = None
    inter_broker_listener: str = "PLAINTEXT"
    scram_users: dict[str, str] = field(default_factory=dict)  # SCRAM-SHA-512, added at format
    jvm_options: list[str] = field(default_factory=list)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def pid_path(self) -> Path:
        return self.data_dir / "broker.pid"

    def _write_config(self) -> Path:
        listeners = self.listeners or (
            f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
        )
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": listeners,
            "advertised.listeners": self.advertised_listeners
            or f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": self.protocol_map
            or "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name": self.inter_broker_listener,
            "log.dirs": str(self.data_dir / "kraft-logs"),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "10",
            "group.initial.rebalance.delay.ms": "0",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
        }
        props.update(self.extra_properties)
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2.format(log=self.log_path))
        return path

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        if java_home and (Path(java_home) / "bin" / "java").exists():
            return str(Path(java_home) / "bin" / "java")
        return _require("java", "install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre)")

    def _classpath(self) -> str:
        return str(ensure_jars()) + "/*"

    def _format_storage(self, config: Path) -> None:
        if (self.data_dir / "kraft-logs" / "meta.properties").exists():
            return
        cluster_id = "-"
        while cluster_id.startswith("-"):  # as Kafka's Uuid.randomUuid: "-..." reads as an option
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        cmd = [
            self._java(), "-cp", self._classpath(),
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config),
        ]
        for name, password in self.scram_users.items():
            cmd += ["--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise BrokerError(f"formatting KRaft storage failed:\n{result.stdout}{result.stderr}")

    def start(self, timeout_s: float = 90.0) -> Self:
        """Start the broker and return once it answers metadata requests."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.controller_port = self.controller_port or free_port()
        if _port_open(self.port):
            raise BrokerError(f"port {self.port} is already in use on 127.0.0.1")
        java, classpath = self._java(), self._classpath()
        config = self._write_config()
        self._format_storage(config)
        cmd = [
            java, f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            *self.jvm_options, "-cp", classpath, "kafka.Kafka", str(config),
        ]
        stdout = open(self.data_dir / "stdout.log", "ab")  # noqa: SIM115 - owned by the child
        # A new session: Ctrl-C in a terminal must reach us first, so we can stop it cleanly.
        self._process = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.pid_path.write_text(str(self._process.pid))
        self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise BrokerError(
                    f"broker exited with code {self._process.returncode}; see {self.log_path} "
                    f"and {self.data_dir / 'stdout.log'}:\n{self._tail()}"
                )
            if self.log_path.exists() and "Kafka Server started" in self.log_path.read_text(
                errors="replace"
            ) and _port_open(self.port):
                return
            time.sleep(0.25)
        self.stop()
        raise BrokerError(f"broker did not start within {timeout_s:.0f}s:\n{self._tail()}")

    def _tail(self) -> str:
        text = ""
        for path in (self.log_path, self.data_dir / "stdout.log"):
            if path.exists():
                text += path.read_text(errors="replace")[-2000:]
        return text

    def version_line(self) -> str:
        """The line of the broker's log that names its Kafka version."""
        for line in self.log_path.read_text(errors="replace").splitlines():
            if "Kafka version" in line:
                return line.strip()
        return ""

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (controlled shutdown), then SIGKILL if it has not exited in time."""
        pid = self._process.pid if self._process else _read_pid(self.pid_path)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(pid, self._process):
            time.sleep(0.2)
        if _alive(pid, self._process):
            os.kill(pid, signal.SIGKILL)
        if self._process is not None:
            self._process.wait(timeout=10)
        self.pid_path.unlink(missing_ok=True)
        self._process = None

    def kill(self) -> None:
        """SIGKILL the broker (fault tests); the data dir is kept for a restart."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _alive(pid: int, process: subprocess.Popen[bytes] | None) -> bool:
    if process is not None:
        return process.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
