"""``logprompt stream`` (also ``python -m streamer``): run the streamer until SIGTERM.

Settings come from defaults < TOML file < ``LOGPROMPT_*`` environment < these flags.
Exit codes: 0 stopped cleanly, 2 the model bundle could not be loaded, 3 a fatal Kafka error,
4 the cluster refused the credentials (authentication or TLS), or a secret file is unreadable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def stream(
    config: Annotated[Path | None, typer.Option(help="TOML settings file.")] = None,
    bootstrap_servers: Annotated[str | None, typer.Option(help="Kafka bootstrap servers.")] = None,
    input_topic: Annotated[list[str] | None, typer.Option(help="Input topic (repeatable).")] = None,
    input_topic_regex: Annotated[str | None, typer.Option(help="Subscribe by regex.")] = None,
    alerts_topic: Annotated[str | None, typer.Option()] = None,
    dead_letter_topic: Annotated[str | None, typer.Option()] = None,
    group_id: Annotated[str | None, typer.Option()] = None,
    instance_id: Annotated[str | None, typer.Option(help="Stable name of this instance.")] = None,
    bundle_path: Annotated[Path | None, typer.Option(help="Model bundle directory.")] = None,
    bundle_loader: Annotated[str | None, typer.Option(help="module:callable loader.")] = None,
    execution_provider: Annotated[str | None, typer.Option(help="auto, cuda or cpu.")] = None,
    threshold_override: Annotated[float | None, typer.Option()] = None,
    idle_flush_s: Annotated[float | None, typer.Option()] = None,
    commit_interval_ms: Annotated[int | None, typer.Option()] = None,
    http_port: Annotated[int | None, typer.Option(help="-1: no HTTP server; 0: any port.")] = None,
    log_level: Annotated[str | None, typer.Option()] = None,
    max_seconds: Annotated[float | None, typer.Option(help="Stop after this long.")] = None,
    max_records: Annotated[int | None, typer.Option(help="Stop after this many records.")] = None,
) -> None:
    """Detect anomalies in log topics in real time and publish alerts, exactly once."""
    from streamer.app import StreamerApp
    from streamer.exceptions import BundleLoadError, FatalKafkaError
    from streamer.kafka_clients import KafkaCredentialsError, check_credentials
    from streamer.logs import configure_logging
    from streamer.settings import load_settings

    overrides: dict[str, Any] = {
        "input_topics": input_topic or None, "input_topic_regex": input_topic_regex,
        "alerts_topic": alerts_topic, "dead_letter_topic": dead_letter_topic,
        "group_id": group_id, "instance_id": instance_id, "bundle_path": bundle_path,
        "bundle_loader": bundle_loader, "execution_provider": execution_provider,
        "threshold_override": threshold_override, "idle_flush_s": idle_flush_s,
        "commit_interval_ms": commit_interval_ms, "http_port": http_port,
        "log_level": log_level,
    }
    if bootstrap_servers:
        overrides["kafka"] = {"bootstrap_servers": bootstrap_servers}
    settings = load_settings(config, **overrides)
    configure_logging(settings.log_level)
    import structlog

    log = structlog.get_logger("streamer")
    # SecretStr fields dump as '**********': the effective settings are safe to log.
    log.info("settings", **settings.model_dump(mode="json", exclude={"kafka": {"extra"}}))
    try:
        check_credentials(settings)
    except KafkaCredentialsError as exc:
        log.error("cannot start: kafka authentication failed", error=str(exc))
        raise typer.Exit(4) from None
    app = StreamerApp(settings)
    app.install_signal_handlers()
    try:
        summary = app.run(max_seconds=max_seconds, max_records=max_records)
    except BundleLoadError as exc:
        log.error("cannot start: model bundle", error=str(exc))
        raise typer.Exit(2) from None
    except FatalKafkaError as exc:
        log.error("fatal kafka error", error=str(exc))
        raise typer.Exit(3) from None
    log.info("summary", **{k: v for k, v in vars(summary).items() if k != "extra"})


def register(app: typer.Typer) -> None:
    """Add the streamer's commands to the ``logprompt`` app."""
    app.command("stream")(stream)


def main() -> None:
    app = typer.Typer(add_completion=False)
    app.command()(stream)
    app()


