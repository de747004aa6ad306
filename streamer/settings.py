"""The streamer's one typed settings object.

Sources, later ones winning: defaults, a TOML file (``--config`` or ``LOGPROMPT_CONFIG_FILE``),
environment variables ``LOGPROMPT_<NAME>`` (nested: ``LOGPROMPT_KAFKA__SASL_PASSWORD``), and
command-line flags. Secrets are ``SecretStr``: never logged, never in metrics.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseModel):
    """Connection to the cluster; passed to librdkafka as its dotted keys."""

    model_config = ConfigDict(extra="forbid")

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    # Secrets may come from files instead (a mounted Kubernetes Secret): read when the clients
    # are configured, trailing newline stripped; a file wins over the inline value.
    sasl_password_file: Path | None = None
    ssl_ca_location: Path | None = None  # the CA bundle file (PEM) that signs the brokers
    ssl_certificate_location: Path | None = None
    ssl_key_location: Path | None = None
    ssl_key_password: SecretStr | None = None
    ssl_key_password_file: Path | None = None
    extra: dict[str, str] = Field(default_factory=dict)  # any other librdkafka key

    def librdkafka_config(self) -> dict[str, str]:
        """The dotted librdkafka keys, secrets included: pass it to clients, never log it."""
        config: dict[str, str] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        optional = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": _secret(self.sasl_password, self.sasl_password_file,
                                     "kafka.sasl_password_file"),
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
            "ssl.key.password": _secret(self.ssl_key_password, self.ssl_key_password_file,
                                        "kafka.ssl_key_password_file"),
        }
        config.update({k: str(v) for k, v in optional.items() if v is not None})
        config.update(self.extra)
        return config


def _secret(inline: SecretStr | None, file: Path | None, setting: str) -> str | None:
    """The secret's value: the file's content (stripped) when a file is set, else the inline
    value. A missing or empty file is an error that names the setting and path, never the value."""
    if file is None:
        return inline.get_secret_value() if inline is not None else None
    try:
        value = file.read_text().strip()
    except OSError as exc:
        raise ValueError(f"{setting}: cannot read {file}: {exc.strerror}") from None
    if not value:
        raise ValueError(f"{setting}: {file} is empty")
    return value


class StreamerSettings(BaseSettings):
    """Everything ``logprompt stream`` reads."""

    model_config = SettingsConfigDict(
        env_prefix="LOGPROMPT_", env_nested_delimiter="__", extra="forbid"
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    input_topics: list[str] = Field(default_factory=lambda: ["logs"])
    input_topic_regex: str | None = None  # e.g. "^logs\\..*"; used instead of input_topics
    alerts_topic: str = "logprompt.alerts"
    dead_letter_topic: str = "logprompt.dead-letter"
    group_id: str = "logprompt-streamer"
    transactional_id_prefix: str = "logprompt-streamer"
    bundle_path: Path = Path("/models/current")
    bundle_reload_interval_s: float = 30.0  # how often the bundle path is checked for a new one
    execution_provider: Literal["auto", "cuda", "cpu"] = "auto"
    intra_op_threads: int = 0  # 0: ONNX Runtime's default
    max_batch_size: int = 64
    max_batch_wait_ms: float = 20.0
    score_cache_size: int = 100_000
    max_inflight_windows: int = 10_000  # above this, partitions are paused (backpressure)
    commit_interval_ms: int = 500  # one transaction per interval
    idle_flush_s: float | None = None  # close all windows after this long without input
    max_raw_lines_per_alert: int = 5
    http_host: str = "0.0.0.0"
    http_port: int = 8080  # /healthz, /readyz, /metrics
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    shutdown_timeout_s: float = 25.0  # finish the open transaction within the pod's grace period
    # --- added by the streamer (issue 6); names above are used by the k8s ConfigMap ---
    # This instance's stable name: transactional.id = f"{transactional_id_prefix}-{instance_id}"
    # (a restart with the same name fences its zombie and aborts its open transaction at once).
    # None: the host name (a StatefulSet pod name is stable across restarts).
    instance_id: str | None = None
    static_membership: bool = False  # group.instance.id = instance_id (restart without rebalance)
    session_timeout_ms: int = 45_000
    transaction_timeout_ms: int = 60_000
    # "module:callable" taking (path, execution_provider=, intra_op_threads=) and returning a
    # scorer; the default is the serving loader. Tests and custom models may name another.
    bundle_loader: str = "logprompt.bundle:load_bundle"
    # fp32 by default: dynamic int8 scores shift with what a window is batched with, so online
    # and offline scores would differ; int8 is opt-in where its measured agreement suffices.
    bundle_variant: Literal["int8", "fp32"] | None = "fp32"  # None: the loader's choice
    threshold_override: float | None = None  # replaces the bundle's threshold (documented knob)
    dead_letter_max_value_bytes: int = 1_000_000  # longer values are cut (header says so)
    max_poll_records: int = 500  # records taken from the consumer per poll call
    lag_refresh_s: float = 5.0  # how often the consumer-lag gauge is recomputed
    # Compacted topic with each open window's start offset, written in the offsets'
    # transaction (see streamer.window_state). None: "<group_id>.window-starts".
    state_topic: str | None = None
    state_topic_partitions: int = 12  # used when the streamer creates the state topic
    create_state_topic: bool = True
    state_restore_timeout_s: float = 60.0


def load_settings(config_file: Path | None = None, **overrides: Any) -> StreamerSettings:
    """Defaults < TOML file < environment < explicit overrides (command-line flags)."""
    import os

    path = config_file or (
        Path(os.environ["LOGPROMPT_CONFIG_FILE"]) if "LOGPROMPT_CONFIG_FILE" in os.environ else None
    )
    file_values: dict[str, Any] = tomllib.loads(path.read_text()) if path else {}
    _refuse_unknown_environment(os.environ)
    env_values = StreamerSettings().model_dump(exclude_unset=True)
    merged = _deep_merge(file_values, env_values)
    merged = _deep_merge(merged, {k: v for k, v in overrides.items() if v is not None})
    return StreamerSettings.model_validate(merged)


# LOGPROMPT_* variables that are not streamer settings.
_OTHER_ENVIRONMENT = {"LOGPROMPT_CONFIG_FILE", "LOGPROMPT_DATASETS", "LOGPROMPT_CACHE"}


def _refuse_unknown_environment(environ: Mapping[str, str]) -> None:
    """pydantic-settings ignores a misspelled top-level variable (LOGPROMPT_ALERT_TOPIC); a
    typo in a deployment must fail at start instead of silently using a default."""
    fields = {name.upper() for name in StreamerSettings.model_fields}
    unknown = sorted(
        key for key in environ
        if key.startswith("LOGPROMPT_") and key not in _OTHER_ENVIRONMENT
        and key.removeprefix("LOGPROMPT_").split("__", 1)[0] not in fields
    )
    if unknown:
        raise ValueError(f"unknown settings in the environment: {', '.join(unknown)}")


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
