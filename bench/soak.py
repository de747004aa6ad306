"""Soak test of one streamer process (not a unit test): is its state bounded under steady load?

The project's own broker; a producer at a steady rate (default 2,000 lines/s) of HDFS lines
(HDFS_2pct looped forever; each pass gets fresh block ids and timestamps shifted past the
previous pass, so windows keep opening and closing as in a live stream; synthetic service logs
when the data set is absent); one ``python -m streamer`` serving a calibrated probe bundle (the
real bundle format and ONNX Runtime session, see ``streamer.testing``). Every ``--sample-s``
it records the streamer's resident memory (``/proc``) and, from its ``/metrics``, the open
windows, the events they hold, the score-cache entries and the consumer lag.

Verdict: after ``--warmup-minutes`` the RSS stays within ``--tolerance-pct`` of its value at the
end of the warm-up. Writes ``bench/results/soak.json``, ``soak.md`` and ``soak.png``.

    .venv/bin/python -m bench.soak [--minutes 10] [--rate 2000] [--warmup-minutes 2]
"""

from __future__ import annotations

import argparse
import calendar
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from logprompt.datasets import RawRecord, cut_windows, default_datasets_root, learn_templates, read_lines
from logprompt.local_kafka import LocalKafkaBroker
from logprompt.local_kafka.broker import free_port
from logprompt.presets import preset
from logprompt.synthetic import generate, json_lines
from logprompt.windows import Position

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
HDFS = default_datasets_root() / "hdfs" / "HDFS_2pct.log.gz"
BLOCK = re.compile(rb"blk_(-?)(\d+)")
HDFS_TIME = "%y%m%d %H%M%S"  # the first 13 bytes of an HDFS line


# -- input -----------------------------------------------------------------------------------------
def hdfs_stream(lines: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) forever: HDFS lines, pass after pass. Pass n prefixes every block id with n
    (fixed width, so ids stay unique and still match the preset's ``blk_-?\\d+``) and shifts
    time by n spans, so event time keeps rising and the session windows of a pass close."""
    stamps = [calendar.timegm(time.strptime(line[:13].decode(), HDFS_TIME)) for line in lines]
    span = max(stamps) - min(stamps) + 1
    for n in range(1, 10_000):
        fresh = rb"blk_\g<1>%04d\g<2>" % n
        for line, stamp in zip(lines, stamps, strict=True):
            when = time.strftime(HDFS_TIME, time.gmtime(stamp + n * span)).encode()
            value = BLOCK.sub(fresh, when + line[13:])
            block = BLOCK.search(value)
            yield (block[0] if block else b"none"), value


def synthetic_stream() -> Iterator[tuple[bytes, bytes]]:
    """(key, value) forever: synthetic service logs (JSON, one session per request id), chunk by
    chunk with a rising start time and a fresh seed, so request ids never repeat."""
    start = 1_700_000_000.0
    for seed in range(1, 1_000_000):
        lines, _ = generate(n_sessions=2_000, seed=seed, start=start)
        start = lines[-1].timestamp + 1.0
        for line, value in zip(lines, json_lines(lines), strict=True):
            yield line.source.encode(), value


class PacedProducer(threading.Thread):
    """Produces ``stream`` at ``rate`` records/s (keyed: a source stays in one partition) until
    stopped; paced in 10 ms steps, so the rate is steady, not bursty."""

    def __init__(self, bootstrap: str, topic: str, stream: Iterator[tuple[bytes, bytes]],
                 rate: float) -> None:
        super().__init__(name="producer", daemon=True)
        self.bootstrap, self.topic, self.stream, self.rate = bootstrap, topic, stream, rate
        self.stop_event = threading.Event()
        self.produced = 0

    def run(self) -> None:
        # Local to the thread: the client is gone when it ends, before the broker stops.
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5,
                             "compression.type": "lz4"})
        started = time.monotonic()
        while not self.stop_event.is_set():
            due = int((time.monotonic() - started) * self.rate)
            for _ in range(due - self.produced):
                key, value = next(self.stream)
                while True:
                    try:
                        producer.produce(self.topic, value=value, key=key)
                        break
                    except BufferError:
                        producer.poll(0.05)
                self.produced += 1
            producer.poll(0)
            time.sleep(0.01)
        producer.flush(30)


# -- the streamer ----------------------------------------------------------------------------------
def build_bundle(out: Path, use_hdfs: bool, hdfs_lines: list[bytes]) -> Path:
    """A probe bundle calibrated to alert on about 5% of the windows of the first lines."""
    from streamer.testing import build_calibrated_probe_bundle

    if use_hdfs:
        config = preset("hdfs")
        records = [RawRecord(v, Position("soak", 0, i)) for i, v in enumerate(hdfs_lines[:20_000])]
    else:
        config = preset("synthetic")
        lines, _ = generate(n_sessions=3_000, seed=0)
        records = [RawRecord(v, Position("soak", 0, i)) for i, v in enumerate(json_lines(lines))]
    table = learn_templates(config, records)
    return build_calibrated_probe_bundle(out, config, table, cut_windows(config, table, records),
                                         alert_share=0.05)


def create_topics(bootstrap: str, partitions: int) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    topics = {"logs": f"soak-logs-{tag}", "alerts": f"soak-alerts-{tag}", "dlq": f"soak-dlq-{tag}"}
    news = [NewTopic(topics["logs"], partitions, 1), NewTopic(topics["alerts"], 3, 1),
            NewTopic(topics["dlq"], 1, 1)]
    admin = AdminClient({"bootstrap.servers": bootstrap})  # alive until the futures resolve
    for future in admin.create_topics(news).values():
        future.result(60)
    return topics


def start_streamer(bootstrap: str, topics: dict[str, str], bundle: Path, port: int,
                   log_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LOGPROMPT_EXECUTION_PROVIDER": "cpu", "LOGPROMPT_INTRA_OP_THREADS": "1",
           "LOGPROMPT_HTTP_HOST": "127.0.0.1"}
    cmd = [sys.executable, "-m", "streamer", "--bootstrap-servers", bootstrap,
           "--input-topic", topics["logs"], "--alerts-topic", topics["alerts"],
           "--dead-letter-topic", topics["dlq"], "--group-id", f"soak-{uuid.uuid4().hex[:8]}",
           "--instance-id", "soak", "--bundle-path", str(bundle), "--http-port", str(port),
           "--log-level", "INFO"]
    with log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


# -- sampling --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    t_s: float
    rss_mb: float
    open_windows: int
    open_events: int
    cache_entries: int
    lag: int
    records_in: int
    windows_closed: int
    alerts: int
    dead_letters: int
    produced: int


def rss_mb(pid: int) -> float:
    """Resident set size from /proc (what the kernel charges the pod's memory limit)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def scrape(port: int) -> dict[str, float]:
    """Every sample of /metrics summed over its labels, by sample name."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name] = out.get(s.name, 0.0) + s.value
    return out


def take_sample(t_s: float, pid: int, port: int, produced: int) -> Sample:
    m = scrape(port)

    def g(name: str) -> int:
        return int(m.get(name, 0))

    return Sample(round(t_s, 1), round(rss_mb(pid), 1), g("logprompt_open_window_keys"),
                  g("logprompt_open_window_events"), g("logprompt_score_cache_entries"),
                  g("logprompt_consumer_lag"), g("logprompt_records_in_total"),
                  g("logprompt_windows_closed_total"), g("logprompt_alerts_out_total"),
                  g("logprompt_decode_errors_total"), produced)


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the streamer exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError("the streamer was not ready in time")


# -- verdict and reports ---------------------------------------------------------------------------
def summarize(samples: list[Sample], warmup_s: float, tolerance_pct: float) -> dict[str, Any]:
    after = [s for s in samples if s.t_s >= warmup_s]
    if not after:
        raise ValueError("no sample after the warm-up: run longer than --warmup-minutes")
    base = after[0].rss_mb
    rss = np.array([s.rss_mb for s in after])
    minutes = np.array([s.t_s for s in after]) / 60
    deviation = float(np.max(np.abs(rss - base)) / base * 100)
    # The slope tells "flat with noise" from "slowly leaking" even when both are within bounds.
    slope = float(np.polyfit(minutes, rss, 1)[0]) if len(after) > 1 else 0.0
    last = samples[-1]
    elapsed = last.t_s - samples[0].t_s
    return {
        "rss_after_warmup_mb": base, "rss_max_mb": float(rss.max()), "rss_min_mb": float(rss.min()),
        "max_deviation_pct": round(deviation, 2), "rss_slope_mb_per_min": round(slope, 3),
        "open_windows_max": max(s.open_windows for s in after),
        "open_events_max": max(s.open_events for s in after),
        "cache_entries_max": max(s.cache_entries for s in after),
        "lag_max": max(s.lag for s in after), "lag_last": last.lag,
        "records_in": last.records_in, "produced": last.produced,
        "input_rate": round((last.records_in - samples[0].records_in) / elapsed, 1) if elapsed else 0,
        "windows_closed": last.windows_closed, "alerts": last.alerts,
        "dead_letters": last.dead_letters,
        "ok": deviation <= tolerance_pct,
    }


def plot(samples: list[Sample], summary: dict[str, Any], warmup_s: float, tolerance_pct: float,
         path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    import matplotlib.pyplot as plt

    t = [s.t_s / 60 for s in samples]
    panels = [("RSS (MB)", [s.rss_mb for s in samples]),
              ("open windows (keys)", [s.open_windows for s in samples]),
              ("score-cache entries", [s.cache_entries for s in samples]),
              ("consumer lag (records)", [s.lag for s in samples])]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 9), sharex=True)
    for ax, (label, values) in zip(axes, panels, strict=True):
        ax.plot(t, values, lw=1.2)
        ax.set_ylabel(label)
        ax.axvline(warmup_s / 60, color="grey", ls=":", lw=1)
        ax.grid(alpha=0.3)
    base = summary["rss_after_warmup_mb"]
    axes[0].axhspan(base * (1 - tolerance_pct / 100), base * (1 + tolerance_pct / 100),
                    color="green", alpha=0.12, label=f"±{tolerance_pct:.0f}% of post-warm-up RSS")
    axes[0].set_ylim(0, max(s.rss_mb for s in samples) * 1.25)
    axes[0].legend(loc="lower right")
    axes[-1].set_xlabel("minutes (dotted: end of warm-up)")
    fig.suptitle(f"streamer soak: max RSS deviation {summary['max_deviation_pct']:.1f}% "
                 f"after warm-up ({'ok' if summary['ok'] else 'FAIL'})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(result: dict[str, Any]) -> str:
    s, c = result["summary"], result["config"]
    rows = [("RSS after warm-up", f"{s['rss_after_warmup_mb']:.1f} MB"),
            ("RSS min / max after warm-up", f"{s['rss_min_mb']:.1f} / {s['rss_max_mb']:.1f} MB"),
            ("max deviation from post-warm-up RSS",
             f"{s['max_deviation_pct']:.2f}% (limit {c['tolerance_pct']:.0f}%)"),
            ("RSS trend after warm-up", f"{s['rss_slope_mb_per_min']:+.3f} MB/min"),
            ("open windows (keys), max", f"{s['open_windows_max']:,}"),
            ("events in open windows, max", f"{s['open_events_max']:,}"),
            ("score-cache entries, max", f"{s['cache_entries_max']:,} (cap {c['score_cache_size']:,})"),
            ("consumer lag, max / last", f"{s['lag_max']:,} / {s['lag_last']:,}"),
            ("records consumed (produced)", f"{s['records_in']:,} ({s['produced']:,})"),
            ("measured input rate", f"{s['input_rate']:,.0f} lines/s"),
            ("windows closed / alerts / dead letters",
             f"{s['windows_closed']:,} / {s['alerts']:,} / {s['dead_letters']:,}"),
            ("verdict", "ok: bounded" if s["ok"] else "FAIL: RSS moved more than the limit")]
    return "\n".join([
        "# Streamer soak\n",
        f"`{result['command']}` ({result['when']}, {result['machine']})\n",
        f"{c['minutes']:g} min at {c['rate']:,.0f} lines/s of {c['input']}, one streamer process "
        f"(probe bundle, CPU), sampled every {c['sample_s']:g} s; warm-up {c['warmup_minutes']:g} "
        "min.\n",
        "| measure | value |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], "",
        "![soak](soak.png)", ""])


# -- main ------------------------------------------------------------------------------------------
def soak(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    use_hdfs = HDFS.exists() and not args.synthetic
    hdfs_lines = [r.value for r in read_lines(HDFS)] if use_hdfs else []
    bundle = build_bundle(work / "bundle", use_hdfs, hdfs_lines)
    broker = LocalKafkaBroker(data_dir=work / "kafka").start()
    try:
        topics = create_topics(broker.bootstrap_servers, args.partitions)
        port = free_port()
        proc = start_streamer(broker.bootstrap_servers, topics, bundle, port, work / "streamer.log")
        try:
            wait_ready(port, proc)
            stream = hdfs_stream(hdfs_lines) if use_hdfs else synthetic_stream()
            producer = PacedProducer(broker.bootstrap_servers, topics["logs"], stream, args.rate)
            samples = run_samples(proc, port, producer, args.minutes * 60, args.sample_s)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                exit_code: int | None = proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                exit_code = None
    finally:
        broker.stop()
    summary = summarize(samples, args.warmup_minutes * 60, args.tolerance_pct)
    summary["streamer_exit_code"] = exit_code
    from streamer.settings import StreamerSettings

    return {"config": {"minutes": args.minutes, "rate": args.rate, "sample_s": args.sample_s,
                       "warmup_minutes": args.warmup_minutes, "tolerance_pct": args.tolerance_pct,
                       "partitions": args.partitions,
                       "input": "HDFS_2pct looped (fresh block ids, shifted time)" if use_hdfs
                       else "synthetic service logs",
                       "score_cache_size": StreamerSettings().score_cache_size},
            "summary": summary, "samples": [asdict(s) for s in samples]}


def run_samples(proc: subprocess.Popen[bytes], port: int, producer: PacedProducer,
                seconds: float, every_s: float) -> list[Sample]:
    """Start the producer, then sample on a fixed grid until ``seconds`` have passed."""
    samples: list[Sample] = []
    producer.start()
    started = time.monotonic()
    try:
        for k in range(int(seconds / every_s) + 1):
            delay = started + k * every_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if proc.poll() is not None:
                raise RuntimeError(f"the streamer exited with {proc.returncode} mid-soak")
            samples.append(take_sample(time.monotonic() - started, proc.pid, port,
                                       producer.produced))
            s = samples[-1]
            print(f"{s.t_s:6.0f}s rss {s.rss_mb:7.1f} MB open {s.open_windows:6d} events "
                  f"{s.open_events:7d} cache {s.cache_entries:6d} lag {s.lag:6d} in "
                  f"{s.records_in:9d}", flush=True)
    finally:
        producer.stop_event.set()
        producer.join(60)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=2000.0, help="input lines/s")
    parser.add_argument("--warmup-minutes", type=float, default=2.0)
    parser.add_argument("--sample-s", type=float, default=5.0)
    parser.add_argument("--tolerance-pct", type=float, default=10.0)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--synthetic", action="store_true", help="synthetic logs even with HDFS")
    parser.add_argument("--out", type=Path, default=RESULTS / "soak",
                        help="writes OUT.json, OUT.md and OUT.png")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        result = soak(args, Path(tmp))
    result["command"] = " ".join(["python -m bench.soak", *(sys.argv[1:] if argv is None else argv)])
    result["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["machine"] = (f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
                         f"Python {platform.python_version()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    plot([Sample(**s) for s in result["samples"]], result["summary"], args.warmup_minutes * 60,
         args.tolerance_pct, args.out.with_suffix(".png"))
    args.out.with_suffix(".md").write_text(render(result))
    print(render(result))
    return 0 if result["summary"]["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
