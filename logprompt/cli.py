"""The ``logprompt`` command. Subcommands import their heavy modules only when they run."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Real-time log anomaly detection on Kafka with prompt-tuned language models.",
    no_args_is_help=True,
    add_completion=False,
)
broker_app = typer.Typer(help="A local single-node Apache Kafka broker (KRaft) for dev and tests.",
                         no_args_is_help=True)
app.add_typer(broker_app, name="broker")

_DEFAULT_BROKER_DIR = Path(".kafka")


@broker_app.command("start")
def broker_start(
    port: Annotated[int, typer.Option(help="Client port on 127.0.0.1 (0: a free one).")] = 9092,
    data_dir: Annotated[Path, typer.Option(help="KRaft storage and logs.")] = _DEFAULT_BROKER_DIR,
    foreground: Annotated[bool, typer.Option(help="Run until Ctrl-C instead of detaching.")] = False,
) -> None:
    """Start the broker (jars from Maven Central on first use, cached after)."""
    from logprompt.local_kafka import BrokerError, LocalKafkaBroker

    broker = LocalKafkaBroker(data_dir=data_dir.resolve(), port=port)
    try:
        broker.start()
    except BrokerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Kafka broker ready on {broker.bootstrap_servers} ({broker.version_line()})")
    typer.echo(f"log: {broker.log_path}")
    if not foreground:
        return
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    while not stop:
        time.sleep(0.5)
    broker.stop()
    typer.echo("broker stopped")


@broker_app.command("stop")
def broker_stop(
    data_dir: Annotated[Path, typer.Option(help="The data dir the broker was started with.")] = (
        _DEFAULT_BROKER_DIR
    ),
) -> None:
    """Stop a detached broker (controlled shutdown, then SIGKILL after 30 s)."""
    from logprompt.local_kafka import LocalKafkaBroker

    LocalKafkaBroker(data_dir=data_dir.resolve()).stop()
    typer.echo("broker stopped")


def _register_subcommands() -> None:
    """Each part registers its own commands; their heavy imports stay inside the commands."""
    from demo.cli import register as register_demo
    from streamer.cli import register as register_streamer
    from training.cli import register as register_training

    register_training(app)
    register_streamer(app)
    register_demo(app)


def main() -> None:
    _register_subcommands()
    app()


if __name__ == "__main__":
    main()
