from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from streamer.cli import register
from streamer.settings import load_settings


def test_register_adds_stream() -> None:
    app = typer.Typer()
    register(app)

    @app.command()
    def other() -> None:  # a second command, so typer keeps subcommand names
        pass

    result = CliRunner().invoke(app, ["stream", "--help"])
    assert result.exit_code == 0 and "--bundle-path" in result.output


def test_file_env_flags_layering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "s.toml"
    config.write_text('group_id = "from-file"\nmax_batch_size = 8\n[kafka]\n'
                      'bootstrap_servers = "file:9092"\n')
    monkeypatch.setenv("LOGPROMPT_MAX_BATCH_SIZE", "16")
    monkeypatch.setenv("LOGPROMPT_KAFKA__SASL_PASSWORD", "s3cret")
    settings = load_settings(config, group_id="from-flag", idle_flush_s=None)
    assert settings.group_id == "from-flag"
    assert settings.max_batch_size == 16
    assert settings.kafka.bootstrap_servers == "file:9092"
    assert "s3cret" not in str(settings.model_dump(mode="json"))
    assert settings.state_topic is None and settings.static_membership is False
