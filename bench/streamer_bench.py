"""End-to-end benchmark of one streamer process (not a test).

Phases, on one broker (``KAFKA_BOOTSTRAP_SERVERS``, else the project's local broker):

1. **Ceiling**: a bare confluent-kafka consumer reads the whole replay topic (no processing).
2. **Throughput**: HDFS_2pct (all lines, keyed by block id, 4 partitions) is produced first; then
   one ``python -m streamer`` process consumes it at full speed with ``--max-records``.
   lines/s = records / (its "stopped" log time - its "partitions assigned" log time).
3. **Latency** at paced input rates (default 2,000 and 10,000 lines/s): the streamer runs while the bench
   produces; for each alert, latency = time the alert became readable (read_committed) minus
   the producer timestamp of the window's last record. Uses sliding windows (size 10, step 10
   per block), so windows close on a record instead of on the idle timer.

The model is a probe bundle (``streamer.testing``: the real bundle format and ONNX Runtime
session, an untrained one-layer graph), because a trained bundle's cost depends on the model,
not on the streamer. ``--bundle DIR`` adds a throughput row for that (trained) bundle, in the
same run, so the two compare as a ratio.

    .venv/bin/python bench/streamer_bench.py [--lines N] [--rates 2000,10000] [--bundle DIR]
        [--out bench/results/streamer_bench]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from logprompt.alerts import Alert  # noqa: E402
from logprompt.datasets import (  # noqa: E402
    cut_windows,
    default_datasets_root,
    learn_templates,
    read_lines,
)
from logprompt.presets import preset  # noqa: E402
from logprompt.windows import WindowConfig  # noqa: E402

BLOCK = re.compile(rb"blk_-?\d+")
RESULTS = REPO / "bench" / "results"
LOG_PARTITIONS = 4


def make_topic(admin: AdminClient, partitions: int, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    return name


def produce(bootstrap: str, topic: str, values: list[bytes], rate: float | None = None,
            created: dict[tuple[int, int], float] | None = None) -> float:
    """Produce keyed by block id; paced at ``rate`` lines/s when given. Records each
    record's producer timestamp by (partition, offset) into ``created``. Returns seconds."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                         "compression.type": "lz4"})

    def on_delivery(err: Any, msg: Any) -> None:
        if err is None and created is not None:
            created[(msg.partition(), msg.offset())] = msg.timestamp()[1] / 1000.0

    started = time.perf_counter()
    for i, value in enumerate(values):
        if rate is not None and i % 100 == 0:
            ahead = started + i / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        match = BLOCK.search(value)
        while True:
            try:
                producer.produce(topic, value=value, key=match.group(0) if match else None,
                                 on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush(120)
    return time.perf_counter() - started


# One record per partition, dated after every session's gap has passed (HDFS_2pct ends on
# 2008-11-11; the session gap is 18 h): the event-time watermark then closes every open
# session, so the run scores all windows, as an offline evaluation of the file does. Without
# it, sessions of the last 18 h stay open when the replay ends (they would close later, on the
# idle timer of a live stream) and the run would time only part of the scoring.
END_OF_REPLAY = b"081231 000000 0 INFO dfs.DataNode: end of replay blk_0"


def produce_end_markers(bootstrap: str, topic: str, partitions: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for partition in range(partitions):
        producer.produce(topic, value=END_OF_REPLAY, key=b"blk_0", partition=partition)
    producer.flush(30)


def bare_consume(bootstrap: str, topic: str, expect: int) -> float:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bare-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "isolation.level": "read_committed"})
    consumer.subscribe([topic])
    seen = 0
    started: float | None = None
    while seen < expect:
        batch = consumer.consume(1000, 1.0)
        if batch and started is None:
            started = time.perf_counter()
        seen += sum(1 for m in batch if not m.error())
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    return seen / elapsed


def streamer_cmd(bootstrap: str, topics: dict[str, str], bundle: Path, group: str,
                 extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "streamer", "--bootstrap-servers", bootstrap,
            "--input-topic", topics["logs"], "--alerts-topic", topics["alerts"],
            "--dead-letter-topic", topics["dlq"], "--group-id", group,
            "--instance-id", group, "--bundle-path", str(bundle), "--http-port", "-1",
            "--execution-provider", "auto", *extra]


def log_events(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(orjson.JSONDecodeError):
                out.append(orjson.loads(line))
    return out


def event_time(events: list[dict[str, Any]], name: str, last: bool = False) -> float:
    matches = [e for e in events if e.get("event") == name]
    chosen = matches[-1] if last else matches[0]
    return datetime.fromisoformat(chosen["timestamp"].replace("Z", "+00:00")).timestamp()


def build_bundle(config_name: str, records: list[Any], out: Path) -> Path:
    from streamer.testing import build_calibrated_probe_bundle

    config = preset("hdfs")
    if config_name == "hdfs_sliding":
        config = config.model_copy(update={
            "name": "hdfs_sliding",
            "window": WindowConfig(kind="sliding", size=10, step=10, max_events=10)})
    train = records[:20_000]
    table = learn_templates(config, train)
    return build_calibrated_probe_bundle(out, config, table, cut_windows(config, table, train),
                                         alert_share=0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=None, help="default: all of HDFS_2pct")
    parser.add_argument("--rates", default="2000,10000",
                        help="input rates (lines/s) of the latency phase, comma-separated")
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    parser.add_argument("--bundle", type=Path, default=None,
                        help="a trained bundle (session windows) to time beside the probe")
    parser.add_argument("--variants", nargs="+", default=["fp32"], choices=["fp32", "int8"],
                        help="graphs of --bundle to time, one row each")
    parser.add_argument("--out", type=Path, default=RESULTS / "streamer_bench",
                        help="writes OUT.json and OUT.md")
    args = parser.parse_args()

    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    tmp = Path(tempfile.mkdtemp(prefix="streamer-bench-"))
    if not bootstrap:
        from logprompt.local_kafka import LocalKafkaBroker

        broker = LocalKafkaBroker(data_dir=tmp / "kafka")
        broker.start()
        bootstrap = broker.bootstrap_servers
    try:
        results = run(bootstrap, args, tmp)
    finally:
        if broker is not None:
            broker.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results["command"] = "bench/streamer_bench.py " + " ".join(sys.argv[1:])
    args.out.with_suffix(".json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    args.out.with_suffix(".md").write_text(render(results))
    print(render(results))


def run(bootstrap: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    path = default_datasets_root() / "hdfs" / "HDFS_2pct.log.gz"
    records = list(read_lines(path, limit=args.lines))
    values = [r.value for r in records]
    bundles = {"hdfs_session": build_bundle("hdfs", records, tmp / "hdfs-probe"),
               "hdfs_sliding": build_bundle("hdfs_sliding", records, tmp / "hdfs-sliding-probe")}
    variants: dict[str, str] = {}
    if args.bundle:
        for variant in args.variants:
            bundles[f"hdfs_session trained {variant}"] = args.bundle
            variants[f"hdfs_session trained {variant}"] = variant
    sliding_bundle = bundles["hdfs_sliding"]
    results: dict[str, Any] = {
        "when": datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(),
                 "machine": platform.machine()},
        "lines": len(values), "dataset": str(path.name),
    }

    # 1 + 2: pre-produced replay, ceiling then one streamer process at full speed.
    throughput: dict[str, Any] = {}
    for name, bundle in bundles.items():
        topics = {"logs": make_topic(admin, LOG_PARTITIONS, "bench-logs"),
                  "alerts": make_topic(admin, 3, "bench-alerts"),
                  "dlq": make_topic(admin, 1, "bench-dlq")}
        produce_s = produce(bootstrap, topics["logs"], values)
        produce_end_markers(bootstrap, topics["logs"], LOG_PARTITIONS)
        records_in = len(values) + LOG_PARTITIONS
        if name == "hdfs_session":
            results["produce_lines_per_s"] = round(len(values) / produce_s)
            results["bare_consumer_lines_per_s"] = round(bare_consume(bootstrap, topics["logs"],
                                                                      len(values)))
        group = f"bench-{uuid.uuid4().hex[:8]}"
        env = os.environ | {"LOGPROMPT_BUNDLE_VARIANT": variants.get(name, "fp32")}
        proc = subprocess.run(
            streamer_cmd(bootstrap, topics, bundle, group,
                         ["--max-records", str(records_in), "--commit-interval-ms", "500"]),
            cwd=REPO, capture_output=True, text=True, timeout=900, env=env)
        events = log_events(proc.stderr + proc.stdout)
        if proc.returncode != 0:
            raise SystemExit(f"streamer failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        elapsed = event_time(events, "stopped") - event_time(events, "partitions assigned")
        stopped = next(e for e in events if e.get("event") == "stopped")
        loaded = next(e for e in events if e.get("event") == "bundle loaded")
        providers = loaded["providers"]
        throughput[name] = {
            "bundle": "probe" if bundle != args.bundle else str(bundle),
            "model_version": loaded.get("model_version"),
            "variant": next((e.get("variant") for e in events
                             if e.get("event") == "bundle_loaded"), None),
            "lines_per_s": round(len(values) / elapsed),
            "seconds": round(elapsed, 2),
            "windows_scored": stopped.get("windows"),
            "alerts": stopped["alerts"],
            "cache_hit_rate": stopped["cache_hit_rate"],
            "providers": providers,
        }
    results["throughput"] = throughput

    # 3: latency at paced rates, sliding windows.
    results["latency"] = [
        latency_phase(admin, bootstrap, values, sliding_bundle, rate, args.latency_seconds)
        for rate in (float(x) for x in args.rates.split(","))
    ]
    return results


def latency_phase(admin: AdminClient, bootstrap: str, values: list[bytes], bundle: Path,
                  rate: float, seconds: float) -> dict[str, Any]:
    n = int(rate * seconds)
    paced = (values * (n // len(values) + 1))[:n]
    topics = {"logs": make_topic(admin, 4, "bench-logs"),
              "alerts": make_topic(admin, 3, "bench-alerts"),
              "dlq": make_topic(admin, 1, "bench-dlq")}
    group = f"bench-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(streamer_cmd(bootstrap, topics, bundle, group,
                                         ["--commit-interval-ms", "100"]),
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    created: dict[tuple[int, int], float] = {}
    arrivals: list[tuple[float, Alert]] = []
    stop = threading.Event()

    def read_alerts() -> None:
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"lat-{group}",
                             "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
        consumer.subscribe([topics["alerts"]])
        while not stop.is_set():
            for msg in consumer.consume(500, 0.1):
                if not msg.error():
                    arrivals.append((time.time(), Alert.from_json(msg.value() or b"{}")))
        consumer.close()

    reader = threading.Thread(target=read_alerts)
    reader.start()
    time.sleep(8.0)  # the streamer starts, loads the bundle and joins the group
    paced_s = produce(bootstrap, topics["logs"], paced, rate=rate, created=created)
    time.sleep(5.0)
    stop.set()
    reader.join()
    proc.terminate()
    proc.wait(60)
    latencies = []
    for seen, alert in arrivals:
        if alert.close_reason != "full":
            continue
        last = max(alert.records, key=lambda r: r.last_offset)
        t0 = created.get((last.partition, last.last_offset))
        if t0 is not None:
            latencies.append(seen - t0)
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {
        "target_lines_per_s": rate,
        "input_lines_per_s": round(len(paced) / paced_s),
        "alerts_measured": len(latencies),
        "p50_ms": round(float(np.percentile(lat, 50)) * 1000, 1),
        "p99_ms": round(float(np.percentile(lat, 99)) * 1000, 1),
        "max_ms": round(float(np.max(lat)) * 1000, 1),
        "commit_interval_ms": 100,
    }


def render(r: dict[str, Any]) -> str:
    t = r["throughput"]
    lines = [
        "# Streamer benchmark",
        "",
        f"Run {r['when']} on {r['host']['cpus']} CPUs (shared), Python {r['host']['python']}; "
        f"{r['lines']:,} lines of {r['dataset']}, 4 partitions keyed by block id; "
        "one streamer process. Rows say which bundle: the probe (real bundle format and ONNX "
        "Runtime session, untrained one-layer graph: the streamer's own cost) or a trained one. "
        f"Command: `.venv/bin/python {r.get('command', 'bench/streamer_bench.py')}`.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| bare confluent-kafka consumer (ceiling) | {r['bare_consumer_lines_per_s']:,} lines/s |",
        f"| producer (replay) | {r['produce_lines_per_s']:,} lines/s |",
    ]
    for name, m in t.items():
        which = ("probe bundle" if m.get("bundle", "probe") == "probe" else
                 f"trained bundle {m.get('model_version')} ({m.get('variant')})")
        lines.append(f"| streamer, {name.split()[0]} windows, {which} | {m['lines_per_s']:,} lines/s "
                     f"({m['seconds']} s, {m.get('windows_scored')} windows scored, "
                     f"{m['alerts']} alerts, cache hit rate "
                     f"{m['cache_hit_rate']:.2%}, {'/'.join(m['providers'])}) |")
    for lat in r["latency"]:
        lines.append(
            f"| latency produce -> alert committed, at {lat['input_lines_per_s']:,} lines/s "
            f"(sliding windows, commit every {lat['commit_interval_ms']} ms) | p50 "
            f"{lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms "
            f"({lat['alerts_measured']} alerts) |")
    lines += [
        "",
        "Targets: >= 50,000 lines/s per process; p99 < 1 s at 10,000 lines/s.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
