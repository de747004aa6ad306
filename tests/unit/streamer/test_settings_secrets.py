"""Kafka secrets from the environment or from files (mounted Secrets), never shown: the settings
dump, their repr and a missing file's error carry no secret value. Starts no broker."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamer.kafka_clients import KafkaCredentialsError, check_credentials, redacted
from streamer.settings import KafkaSettings, StreamerSettings, load_settings

REPO = Path(__file__).resolve().parents[3]
SECRET = "Zq7-unlikely-secret-9xK"


def test_password_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGPROMPT_KAFKA__SASL_PASSWORD", SECRET)
    settings = load_settings()
    assert settings.kafka.librdkafka_config()["sasl.password"] == SECRET
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump(mode="json"))


def test_password_and_key_password_from_files(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "password").write_text(SECRET + "\n")  # as kubectl writes a Secret key
    (tmp_path / "key-password").write_text("k3y-" + SECRET)
    monkeypatch.setenv("LOGPROMPT_KAFKA__SASL_PASSWORD", "inline-loses")
    monkeypatch.setenv("LOGPROMPT_KAFKA__SASL_PASSWORD_FILE", str(tmp_path / "password"))
    monkeypatch.setenv("LOGPROMPT_KAFKA__SSL_KEY_PASSWORD_FILE", str(tmp_path / "key-password"))
    settings = load_settings()
    config = settings.kafka.librdkafka_config()
    assert config["sasl.password"] == SECRET  # the file wins, its newline stripped
    assert config["ssl.key.password"] == "k3y-" + SECRET
    shown = repr(settings) + str(settings.model_dump(mode="json")) + str(redacted(config))
    assert SECRET not in shown


def test_file_is_read_when_clients_are_configured(tmp_path: Path) -> None:
    """A rotated Secret is picked up by the next client configuration (a restart)."""
    secret = tmp_path / "password"
    secret.write_text("first")
    kafka = KafkaSettings(sasl_password_file=secret)
    assert kafka.librdkafka_config()["sasl.password"] == "first"
    secret.write_text("second")
    assert kafka.librdkafka_config()["sasl.password"] == "second"


@pytest.mark.parametrize("content", [None, "", "\n"])
def test_missing_or_empty_file_names_the_setting(tmp_path: Path, content: str | None) -> None:
    secret = tmp_path / "password"
    if content is not None:
        secret.write_text(content)
    with pytest.raises(ValueError, match=r"kafka\.sasl_password_file: .*password"):
        KafkaSettings(sasl_password_file=secret).librdkafka_config()


def test_check_credentials_fails_on_an_unreadable_file_without_a_cluster(tmp_path: Path) -> None:
    settings = StreamerSettings(kafka=KafkaSettings(
        bootstrap_servers="127.0.0.1:1", security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512", sasl_username="u",
        sasl_password_file=tmp_path / "absent"))
    with pytest.raises(KafkaCredentialsError, match="sasl_password_file"):
        check_credentials(settings, timeout_s=30)


def test_check_credentials_skips_plaintext() -> None:
    started = time.monotonic()
    check_credentials(StreamerSettings(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1")))
    assert time.monotonic() - started < 1.0  # no login to check, no network call


def test_cli_exits_4_on_an_unreadable_secret_file(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "LOGPROMPT_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
           "LOGPROMPT_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
           "LOGPROMPT_KAFKA__SASL_USERNAME": "u",
           "LOGPROMPT_KAFKA__SASL_PASSWORD_FILE": str(tmp_path / "absent")}
    result = subprocess.run(
        [sys.executable, "-m", "streamer", "--bundle-path", str(tmp_path), "--http-port", "-1",
         "--bootstrap-servers", "127.0.0.1:1"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 4, result.stderr[-2000:]
    assert "kafka authentication failed" in result.stderr
    assert str(tmp_path / "absent") in result.stderr
