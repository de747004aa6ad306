"""Probes, metrics, hot reload (accepted and refused) on a running streamer."""

from __future__ import annotations

import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from logprompt.alerts import Alert
from logprompt.bundle import load_bundle
from logprompt.datasets import RawRecord
from streamer.app import StreamerApp
from streamer.settings import StreamerSettings
from streamer.testing import build_probe_bundle
from tests.integration.streamer.conftest import produce_replay, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _wait(predicate: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.2)


def test_probes_metrics_and_hot_reload(kafka_bootstrap: str,
                                       topics: Callable[..., dict[str, str]],
                                       streamer_settings: Callable[..., StreamerSettings],
                                       hdfs_records: list[RawRecord], hdfs_bundle: Path,
                                       tmp_path: Path) -> None:
    t = topics(partitions=2)
    # The bundle path is a symlink, as a deployment would switch it.
    v1 = tmp_path / "v1"
    shutil.copytree(hdfs_bundle, v1)
    current = tmp_path / "current"
    current.symlink_to(v1)
    old = load_bundle(v1, execution_provider="cpu")
    settings = streamer_settings(input_topics=[t["logs"]], alerts_topic=t["alerts"],
                                 dead_letter_topic=t["dlq"], bundle_path=current, http_port=0,
                                 bundle_reload_interval_s=0.5, threshold_override=0.0)
    app = StreamerApp(settings)
    thread = threading.Thread(target=app.run, kwargs={"max_seconds": 150})
    thread.start()
    try:
        _wait(lambda: app.http_port is not None)
        port = app.http_port
        assert port is not None
        assert _get(port, "/healthz")[0] == 200
        _wait(app.ready)
        assert _get(port, "/readyz")[0] == 200
        produce_replay(kafka_bootstrap, t["logs"], [r.value for r in hdfs_records[:1500]])
        first = read_topic(kafka_bootstrap, t["alerts"], expect=1, quiet_s=4.0, timeout_s=60)
        assert first and all(Alert.from_json(m.value()).model_version == old.model_version
                             for m in first)
        assert all(Alert.from_json(m.value()).threshold == 0.0 for m in first)  # the override
        code, text = _get(port, "/metrics")
        assert code == 200
        for name in ("logprompt_records_in_total", "logprompt_windows_scored_total",
                     "logprompt_score_cache_hits_total", "logprompt_inference_batch_size",
                     "logprompt_inference_seconds", "logprompt_alerts_out_total",
                     "logprompt_consumer_lag", "logprompt_rebalances_total",
                     "logprompt_model_info", "logprompt_decode_errors"):
            assert name in text, name
        assert f'model_version="{old.model_version}"' in text

        # A refused bundle: corrupt model file; the old model keeps serving.
        bad = tmp_path / "bad"
        shutil.copytree(v1, bad)
        (bad / "model.onnx").write_bytes(b"not onnx")
        (bad / "manifest.json").write_text((bad / "manifest.json").read_text() + " ")
        current.unlink()
        current.symlink_to(bad)
        _wait(lambda: app.metrics.bundle_reloads.labels("refused")._value.get() >= 1)
        assert app._scorer is not None and app._scorer.model_version == old.model_version

        # An accepted one: another model, same pipeline; new alerts carry its version.
        v2 = build_probe_bundle(tmp_path / "v2", old.pipeline_config, old.table,
                                threshold=0.0, seed=5, model_version="probe-v2")
        current.unlink()
        current.symlink_to(v2)
        _wait(lambda: app._scorer is not None and app._scorer.model_version == "probe-v2")
        assert 'model_version="probe-v2"' in _get(port, "/metrics")[1]
        produce_replay(kafka_bootstrap, t["logs"], [r.value for r in hdfs_records[1500:2500]])
        _wait(lambda: any(Alert.from_json(m.value()).model_version == "probe-v2"
                          for m in read_topic(kafka_bootstrap, t["alerts"], quiet_s=2.0,
                                              timeout_s=30)))
    finally:
        app.request_stop("test done")
        thread.join(60)
    assert not thread.is_alive()
