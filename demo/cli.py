"""``logprompt demo``, ``logprompt replay``, ``logprompt report`` and ``logprompt synth``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo(
    workdir: Annotated[Path, typer.Option(help="Checkpoint, bundle, logs and report go here.")] = (
        Path("runs/demo")),
    bootstrap_servers: Annotated[str | None, typer.Option(
        help="Use this Kafka cluster instead of starting the local broker.")] = None,
    dataset: Annotated[str, typer.Option(
        help="hdfs, synthetic, a data set spec (.toml), or auto (hdfs when present).")] = "auto",
    datasets_root: Annotated[Path | None, typer.Option(help="Loghub data sets folder.")] = None,
    label_fraction: Annotated[float, typer.Option(help="Share of training windows labelled.")] = 0.1,
    max_steps: Annotated[int | None, typer.Option(
        help="Cap on training steps (default: the training recipe's own).")] = None,
    ensemble: Annotated[int | None, typer.Option(
        help="Ensemble members to train (default: the training recipe's own).")] = None,
    rate: Annotated[float | None, typer.Option(help="Replay rate, lines/s (default: full speed).")
                    ] = None,
) -> None:
    """Train, export, stream and alert on a local broker, end to end, then summarise."""
    from demo.run import DemoConfig, DemoError, run_demo

    config = DemoConfig(workdir=workdir, bootstrap=bootstrap_servers, dataset=dataset,
                        datasets_root=datasets_root, label_fraction=label_fraction,
                        train_max_steps=max_steps, train_ensemble=ensemble,
                        replay_rate=rate)
    try:
        run_demo(config)
    except KeyboardInterrupt:
        typer.echo("interrupted: streamer and broker stopped", err=True)
        raise typer.Exit(130) from None
    except DemoError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def replay(
    path: Annotated[Path, typer.Argument(help="Log file: plain or .gz, text or JSON lines.")],
    topic: Annotated[str, typer.Option(help="Topic to produce to.")],
    bootstrap_servers: Annotated[str, typer.Option()] = "127.0.0.1:9092",
    preset: Annotated[str | None, typer.Option(help="Pipeline preset for keys and timestamps.")
                      ] = None,
    spec: Annotated[Path | None, typer.Option(help="Data set spec (.toml) instead of a preset.")
                    ] = None,
    rate: Annotated[float | None, typer.Option(help="Lines/s (default: as fast as possible).")
                    ] = None,
    keep_timestamps: Annotated[bool, typer.Option(
        help="Give each Kafka record its line's own event time.")] = False,
    limit: Annotated[int | None, typer.Option(help="Only the first N lines.")] = None,
) -> None:
    """Produce a log file into a topic, keyed by source key, at a chosen rate."""
    from demo.replay import file_values
    from demo.replay import replay as run_replay
    from logprompt.pipeline import PipelineConfig
    from logprompt.presets import preset as named_preset
    from logprompt.spec import read_spec

    config = read_spec(spec)[1] if spec else named_preset(preset) if preset else PipelineConfig()
    stats = run_replay(file_values(path, limit), topic, bootstrap_servers, config, rate=rate,
                       keep_timestamps=keep_timestamps)
    typer.echo(f"{stats.records:,} records in {stats.seconds:.1f} s "
               f"({stats.records_per_s:,.0f}/s); {stats.undecodable} undecodable (produced too)")


def report(
    bundle: Annotated[Path, typer.Argument(help="The model bundle the alerts came from.")],
    alerts_topic: Annotated[str, typer.Option()],
    dataset: Annotated[str, typer.Option(help="The labelled data set that was replayed.")],
    out: Annotated[Path, typer.Option(help="Report directory.")] = Path("runs/report"),
    split: Annotated[str, typer.Option(help="Which slice was replayed.")] = "test",
    bootstrap_servers: Annotated[str, typer.Option()] = "127.0.0.1:9092",
    datasets_root: Annotated[Path | None, typer.Option()] = None,
) -> None:
    """Streamed alerts (read_committed) against labels, beside the offline evaluation."""
    from demo.kafka_io import read_alerts
    from demo.report import EvaluationInput, write_report
    from logprompt.bundle import load_bundle
    from logprompt.datasets import load_dataset

    scorer = load_bundle(bundle, execution_provider="cpu", variant="fp32", warmup=False)
    data = load_dataset(dataset, datasets_root, config=scorer.pipeline_config)
    alerts = read_alerts(bootstrap_servers, alerts_topic, stop=lambda: True, idle_s=5.0)
    result = write_report(EvaluationInput(data, split, bundle, alerts), out)
    typer.echo(f"streamed F1 {result.streaming['f1']:.3f}, offline F1 {result.offline['f1']:.3f}; "
               f"report: {result.path / 'report.md'}")


def synth(
    out: Annotated[Path, typer.Argument(help="Folder for shop.log, shop_labels.csv, shop.toml.")],
    sessions: Annotated[int, typer.Option()] = 3000,
    seed: Annotated[int, typer.Option()] = 0,
    json_lines: Annotated[bool, typer.Option(help="JSON lines instead of plain text.")] = False,
) -> None:
    """Write synthetic service logs with injected anomalies, their labels and a data set spec."""
    from demo.synth import write_synthetic

    spec = write_synthetic(out, sessions, seed, "json" if json_lines else "text")
    typer.echo(f"wrote {spec.parent}: {spec.name} (data set spec), its log and labels")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("replay")(replay)
    app.command("report")(report)
    app.command("synth")(synth)
