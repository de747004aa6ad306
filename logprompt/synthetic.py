"""Realistic synthetic service logs with injected anomalies, for the demo and tests where the
Loghub files are absent.

Each session is one request through a small web service (auth, cache, database, response),
written as JSON lines ``{"timestamp", "source", "service", "level", "message"}`` with the
request id as source. About ``anomaly_rate`` of sessions carry one injected fault: a database
timeout with retries and a 503, an out-of-memory kill, a full disk, a response sent before
authentication (an order anomaly), or a request that never answers (a missing event).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

ANOMALY_KINDS = ("db_timeout", "oom_kill", "disk_full", "reply_before_auth", "no_reply")


@dataclass(frozen=True, slots=True)
class SyntheticLine:
    timestamp: float
    source: str
    service: str
    level: str
    message: str

    def to_text(self) -> bytes:
        """A plain-text form no preset knows: ``<iso time> <service> <level> [<source>] msg``."""
        when = datetime.fromtimestamp(self.timestamp, UTC).isoformat(timespec="milliseconds")
        return f"{when} {self.service} {self.level} [{self.source}] {self.message}".encode()

    def to_json(self) -> bytes:
        return orjson.dumps({
            "timestamp": datetime.fromtimestamp(self.timestamp, UTC).isoformat(timespec="milliseconds"),
            "source": self.source, "service": self.service, "level": self.level,
            "message": self.message,
        })


def _normal_flow(rng: random.Random, user: int, item: int) -> list[tuple[str, str, str]]:
    ip = f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    method = rng.choice(["GET", "GET", "GET", "POST"])
    flow = [("api", "INFO", f"{method} /api/v1/orders/{item} from {ip} user {user}"),
            ("auth", "INFO", f"token validated for user {user} in {rng.randint(1, 9)} ms")]
    if method == "GET":
        if rng.random() < 0.6:
            flow.append(("cache", "INFO", f"cache hit for key order:{item}"))
        else:
            flow += [("cache", "INFO", f"cache miss for key order:{item}"),
                     ("db", "INFO", f"query SELECT orders took {rng.randint(2, 40)} ms rows 1"),
                     ("cache", "INFO", f"cache set key order:{item} ttl {rng.choice([60, 300])}")]
    else:
        flow += [("db", "INFO", f"insert into orders committed in {rng.randint(3, 60)} ms"),
                 ("worker", "INFO", f"job {rng.randint(1000, 9999)} queued for order {item}")]
    flow.append(("api", "INFO", f"response 200 sent in {rng.randint(5, 120)} ms bytes "
                                f"{rng.randint(200, 9000)}"))
    return flow


def _inject(kind: str, flow: list[tuple[str, str, str]], rng: random.Random, item: int
            ) -> list[tuple[str, str, str]]:
    head, reply = flow[:2], flow[-1]
    if kind == "db_timeout":
        retries = [("db", "WARN", f"retrying query attempt {n}") for n in range(1, 4)]
        return head + [("db", "ERROR", f"connection timeout after {rng.randint(3000, 9000)} ms "
                                        f"to 10.0.9.{rng.randint(1, 9)}:5432"), *retries,
                       ("api", "ERROR", f"response 503 sent in {rng.randint(9000, 30000)} ms")]
    if kind == "oom_kill":
        return flow[:-1] + [("worker", "ERROR", f"worker killed: out of memory while processing "
                                                f"order {item}"),
                            ("api", "ERROR", "response 500 sent after worker failure")]
    if kind == "disk_full":
        return head + [("db", "ERROR", f"write failed on /var/lib/db/data{rng.randint(1, 4)}: no "
                                       f"space left on device"), flow[-1]]
    if kind == "reply_before_auth":
        return [flow[0], reply, *flow[1:-1]]
    return flow[:-1]  # no_reply: the request never answers


def generate(n_sessions: int = 2000, anomaly_rate: float = 0.04, seed: int = 0,
             start: float = 1_700_000_000.0, sessions_per_second: float = 20.0
             ) -> tuple[list[SyntheticLine], dict[str, int]]:
    """Lines in event-time order and labels per session (1 anomalous)."""
    rng = random.Random(seed)
    lines: list[SyntheticLine] = []
    labels: dict[str, int] = {}
    for index in range(n_sessions):
        source = f"req-{rng.getrandbits(48):012x}"
        user, item = rng.randint(1, 500), rng.randint(10_000, 99_999)
        flow = _normal_flow(rng, user, item)
        anomalous = rng.random() < anomaly_rate
        if anomalous:
            flow = _inject(rng.choice(ANOMALY_KINDS), flow, rng, item)
        labels[source] = int(anomalous)
        t = start + index / sessions_per_second
        for service, level, message in flow:
            t += rng.uniform(0.001, 0.05)
            lines.append(SyntheticLine(t, source, service, level, message))
    lines.sort(key=lambda line: line.timestamp)
    return lines, labels


def json_lines(lines: list[SyntheticLine]) -> Iterator[bytes]:
    for line in lines:
        yield line.to_json()
