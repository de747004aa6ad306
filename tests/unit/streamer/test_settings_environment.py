"""A misspelled LOGPROMPT_* variable stops the streamer at start instead of being ignored."""

from __future__ import annotations

import pytest

from streamer.settings import load_settings


def test_known_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGPROMPT_ALERTS_TOPIC", "alerts-x")
    monkeypatch.setenv("LOGPROMPT_KAFKA__BOOTSTRAP_SERVERS", "broker:9093")
    monkeypatch.setenv("LOGPROMPT_DATASETS", "/data")  # another component's variable
    settings = load_settings()
    assert settings.alerts_topic == "alerts-x"
    assert settings.kafka.bootstrap_servers == "broker:9093"


@pytest.mark.parametrize("name", ["LOGPROMPT_ALERT_TOPIC", "LOGPROMPT_KAFKA__BOOTSTRAP_SERVER"])
def test_misspelled_variable_is_refused(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "x")
    with pytest.raises(ValueError):
        load_settings()
