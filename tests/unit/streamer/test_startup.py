"""A bundle that cannot be loaded stops the process at start with a clear error (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from streamer.app import StreamerApp
from streamer.exceptions import BundleLoadError
from streamer.settings import StreamerSettings

REPO = Path(__file__).resolve().parents[3]


def test_missing_bundle_raises_before_any_kafka_call(tmp_path: Path) -> None:
    settings = StreamerSettings(bundle_path=tmp_path / "nope", http_port=-1)
    with pytest.raises(BundleLoadError, match="nope"):
        StreamerApp(settings).run(max_seconds=5)


def test_corrupt_bundle_exits_2_with_the_path(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{not json")
    result = subprocess.run(
        [sys.executable, "-m", "streamer", "--bundle-path", str(tmp_path), "--http-port", "-1",
         "--bootstrap-servers", "127.0.0.1:1"],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "cannot start: model bundle" in result.stderr
    assert str(tmp_path) in result.stderr
