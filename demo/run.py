"""``logprompt demo``: the whole product on a local broker, in one command.

Steps: start the local Apache Kafka broker (unless one is given), create the topics, train a
model with a quick recipe, export the bundle, start the streamer (a real ``logprompt stream``
process), replay the test slice of the labelled logs into the log topic, print alerts as they
arrive, and end with a summary and a report: lines, lines/s, alerts, and precision / recall / F1
of the streamed alerts against the labels beside the offline evaluation of the same bundle on
the same windows (they must agree).

Data: ``../shared/datasets`` HDFS when present, else the built-in synthetic service logs.
Ctrl-C stops the streamer and the broker; nothing is left running.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from demo.kafka_io import ensure_topics, group_caught_up, read_alerts, records_in
from demo.replay import replay
from demo.report import EvaluationInput, write_report
from logprompt.alerts import Alert
from logprompt.datasets import Dataset, default_datasets_root, load_dataset

log = structlog.get_logger("demo")


class DemoError(RuntimeError):
    """The demo cannot run as configured (the message says why and what to change)."""


@dataclass
class DemoConfig:
    workdir: Path = Path("runs/demo")
    bootstrap: str | None = None  # None: start the project's local broker
    dataset: str = "auto"  # auto: hdfs when ../shared/datasets has it, else synthetic
    datasets_root: Path | None = None
    label_fraction: float = 0.1
    train_epochs: int | None = None  # None: the training defaults (docs/training.md)
    train_max_steps: int | None = None
    train_ensemble: int | None = None
    max_length: int = 128
    synthetic_sessions: int = 2000
    replay_rate: float | None = None  # lines/s; None: as fast as possible
    partitions: int = 3
    show_alerts: int = 10
    timeout_s: float = 600.0  # for the streamer to catch up after the replay
    topics: dict[str, str] = field(default_factory=lambda: {
        "logs": "logprompt.demo.logs", "alerts": "logprompt.demo.alerts",
        "dead_letter": "logprompt.demo.dead-letter"})


@dataclass
class DemoSummary:
    dataset: str
    lines: int
    seconds: float
    lines_per_s: float
    alerts: int
    streaming: dict[str, float]
    offline: dict[str, float]
    report: Path


def _choose_dataset(config: DemoConfig) -> str:
    if config.dataset != "auto":
        return config.dataset
    root = config.datasets_root or default_datasets_root()
    return "hdfs" if (root / "hdfs" / "HDFS_2pct.log.gz").exists() else "synthetic"


def train_and_export(config: DemoConfig, dataset_name: str) -> tuple[Path, Dataset]:
    """Quick recipe: a fraction of the training windows labelled, a few hundred steps."""
    from export.exporter import export_bundle
    from training.config import TrainConfig
    from training.data import LabelBudget
    from training.train import train

    dataset = load_dataset(dataset_name, config.datasets_root,
                           limit=config.synthetic_sessions if dataset_name == "synthetic" else None)
    optional = {"epochs": config.train_epochs, "max_steps": config.train_max_steps,
                "ensemble": config.train_ensemble}
    train_config = TrainConfig.model_validate({
        "dataset": dataset_name, "datasets_root": config.datasets_root,
        "output": config.workdir / "checkpoint",
        "label_budget": LabelBudget(fraction=config.label_fraction),
        "max_length": config.max_length, **{k: v for k, v in optional.items() if v is not None},
    })
    t0 = time.perf_counter()
    checkpoint = train(train_config, dataset=dataset)
    log.info("trained", checkpoint=str(checkpoint), seconds=round(time.perf_counter() - t0, 1))
    bundle = export_bundle(checkpoint, config.workdir / "bundle", force=True,
                           windows=[lw.window for lw in dataset.windows["test"]][:256])
    return bundle, dataset


def _start_streamer(config: DemoConfig, bootstrap: str, bundle: Path, group: str
                    ) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "streamer", "--bootstrap-servers", bootstrap,
           "--input-topic", config.topics["logs"], "--alerts-topic", config.topics["alerts"],
           "--dead-letter-topic", config.topics["dead_letter"], "--group-id", group,
           "--bundle-path", str(bundle), "--idle-flush-s", "3", "--http-port", "-1",
           "--log-level", "WARNING"]
    logfile = open(config.workdir / "streamer.log", "wb")  # noqa: SIM115 - owned by the child
    return subprocess.Popen(cmd, stdout=logfile, stderr=subprocess.STDOUT)


def _print_alert(alert: Alert) -> None:
    print(f"  ALERT {alert.source_key:<28} score {alert.score:.3f} "
          f"({alert.event_count} events) {' '.join(alert.template_ids[:6])}"
          f"{' ...' if len(alert.template_ids) > 6 else ''}", flush=True)


def run_demo(config: DemoConfig) -> DemoSummary:
    from logprompt.local_kafka import LocalKafkaBroker

    config.workdir.mkdir(parents=True, exist_ok=True)
    broker: LocalKafkaBroker | None = None
    streamer: subprocess.Popen[bytes] | None = None
    # Ctrl-C and SIGTERM both unwind through `finally`, even where SIGINT came in ignored.
    previous = {sig: signal.signal(sig, signal.default_int_handler)
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        bootstrap = config.bootstrap
        if bootstrap is None:
            print("[1/6] starting the local Apache Kafka broker ...", flush=True)
            # A fresh broker every run: the last run's topics would be replayed again by the
            # new consumer group (from the earliest offset) and its alerts counted twice.
            data_dir = (config.workdir / "kafka").resolve()
            shutil.rmtree(data_dir, ignore_errors=True)
            broker = LocalKafkaBroker(data_dir=data_dir, port=0)
            broker.start()
            bootstrap = broker.bootstrap_servers
            print(f"      {broker.version_line().split('INFO ')[-1]} on {bootstrap}", flush=True)
        ensure_topics(bootstrap, {config.topics["logs"]: config.partitions,
                                  config.topics["alerts"]: config.partitions,
                                  config.topics["dead_letter"]: 1})
        for role in ("logs", "alerts"):
            if (held := records_in(bootstrap, config.topics[role])) > 0:
                raise DemoError(f"topic {config.topics[role]} already holds {held} records "
                                "from an earlier run; give the demo other topic names, or "
                                "delete these topics first")
        dataset_name = _choose_dataset(config)
        print(f"[2/6] training on {dataset_name} ({config.label_fraction:.0%} of the training "
              f"windows labelled) and exporting the bundle ...", flush=True)
        bundle, dataset = train_and_export(config, dataset_name)
        print(f"[3/6] starting the streamer with {bundle}", flush=True)
        group = f"logprompt-demo-{uuid.uuid4().hex[:8]}"
        streamer = _start_streamer(config, bootstrap, bundle, group)

        records = dataset.records["test"]
        print(f"[4/6] replaying the test slice ({len(records):,} lines) into "
              f"{config.topics['logs']} while the streamer scores it ...", flush=True)
        replay_done = threading.Event()
        shown: list[Alert] = []

        def on_alert(alert: Alert) -> None:
            shown.append(alert)
            if len(shown) <= config.show_alerts:
                _print_alert(alert)

        alerts_box: list[list[Alert]] = []
        reader = threading.Thread(target=lambda: alerts_box.append(read_alerts(
            bootstrap, config.topics["alerts"], replay_done.is_set, on_alert, idle_s=5.0)),
            daemon=True)
        reader.start()
        t0 = time.perf_counter()
        failures: list[BaseException] = []

        def produce() -> None:
            try:
                replay([r.value for r in records], config.topics["logs"], bootstrap,
                       dataset.config, rate=config.replay_rate, total=len(records))
            except BaseException as exc:  # reported by the main thread
                failures.append(exc)

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        progress: list[tuple[float, int]] = []
        deadline = time.monotonic() + config.timeout_s
        while True:
            caught_up, done, _ = group_caught_up(bootstrap, group, config.topics["logs"])
            progress.append((time.perf_counter() - t0, done))
            if failures:
                raise RuntimeError(f"replay failed: {failures[0]}")
            if not producer.is_alive() and caught_up and done >= len(records):
                break
            if streamer.poll() is not None:
                raise RuntimeError(f"the streamer exited with {streamer.returncode}; "
                                   f"see {config.workdir / 'streamer.log'}")
            if time.monotonic() > deadline:
                raise TimeoutError("the streamer did not catch up in time")
            if not producer.is_alive() and len(progress) % 5 == 0:
                print(f"      committed {done:,} of {len(records):,} lines", flush=True)
            time.sleep(1.0)
        seconds = time.perf_counter() - t0
        replay_done.set()
        reader.join(timeout=60)
        alerts = alerts_box[0] if alerts_box else shown
        if len(alerts) > config.show_alerts:
            print(f"  ... and {len(alerts) - config.show_alerts} more alerts", flush=True)
        print("[5/6] evaluating the alerts against the labels ...", flush=True)
        result = write_report(EvaluationInput(dataset=dataset, split="test", bundle=bundle,
                                              alerts=alerts, seconds=seconds,
                                              progress=progress),
                              config.workdir / "report")
        summary = DemoSummary(dataset_name, len(records), seconds, len(records) / seconds,
                              len(alerts), result.streaming, result.offline, result.path)
        print("[6/6] done", flush=True)
        _print_summary(summary)
        return summary
    finally:
        if streamer is not None and streamer.poll() is None:
            streamer.send_signal(signal.SIGTERM)
            try:
                streamer.wait(timeout=40)
            except subprocess.TimeoutExpired:
                streamer.kill()
        if broker is not None:
            broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _print_summary(s: DemoSummary) -> None:
    def row(name: str, m: dict[str, float]) -> str:
        return (f"  {name:<26} precision {m['precision']:.3f}  recall {m['recall']:.3f}  "
                f"F1 {m['f1']:.3f}  ({int(m['predicted'])} flagged of {int(m['windows'])} "
                f"windows, {int(m['anomalous'])} anomalous)")

    print("\nSummary", flush=True)
    print(f"  data set                   {s.dataset} (test slice)")
    print(f"  lines processed            {s.lines:,} in {s.seconds:.1f} s "
          f"({s.lines_per_s:,.0f} lines/s, replay to last commit)")
    print(f"  alerts                     {s.alerts:,}")
    print(row("streamed alerts", s.streaming))
    print(row("offline, same bundle", s.offline))
    print(f"  report                     {s.report / 'report.md'}", flush=True)
