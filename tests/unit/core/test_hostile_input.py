"""Hostile input never crashes the core and never grows its state without bound: random bytes,
invalid UTF-8, NUL and control characters, deeply nested and huge JSON, 10 MB lines, and a
flood of distinct source keys."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logprompt.parsing import ParserConfig, TemplateLearner, TemplateMatcher
from logprompt.pipeline import Pipeline, PipelineConfig
from logprompt.presets import HDFS, JSON_LOGS
from logprompt.records import DecodeError, RecordFormat
from logprompt.sources import SourceKeyConfig
from logprompt.windows import Position, WindowConfig

TABLE = TemplateLearner(HDFS.parser).learn_all([
    "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_1 "
    "terminating"])


def feed(pipeline: Pipeline, value: bytes | None) -> str:
    try:
        pipeline.process(value, Position("logs", 0, 0))
    except DecodeError as exc:
        return exc.reason
    return "ok"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000) | st.text(max_size=500).map(str.encode))
def test_random_bytes_through_the_whole_pipeline(value: bytes) -> None:
    for config in (HDFS, JSON_LOGS):
        assert feed(Pipeline(config, TABLE), value)


@pytest.mark.parametrize("value", [
    b"\x00" * 100, b"a\x00b\x00c", b"\x1b[31mred\x1b[0m \x07\x08 bell", "\u202e\ufeff rtl".encode(),
    b"\xed\xa0\x80 surrogate", b"\xff" * 10, b"{" * 5000, b"[" * 100000 + b"]" * 100000,
    orjson.dumps({"message": "x" * 60000}), b'{"message": "a", "timestamp": 1e308}',
])
def test_corpus_of_nasty_records(value: bytes) -> None:
    for config in (HDFS, JSON_LOGS):
        assert feed(Pipeline(config, TABLE), value)


def test_ten_megabyte_line_is_refused_not_parsed() -> None:
    pipeline = Pipeline(HDFS, TABLE)
    assert feed(pipeline, b"x" * (10 * 1024 * 1024)) == "too_long"
    limit = HDFS.model_copy(update={"record": RecordFormat(max_bytes=20 * 1024 * 1024)})
    assert feed(Pipeline(limit, TABLE), b"word " * (2 * 1024 * 1024)) == "ok"  # parses, slowly


def test_deeply_nested_json_is_a_decode_error() -> None:
    assert feed(Pipeline(JSON_LOGS, TABLE), b'{"message": ' + b"[" * 2000 + b"]" * 2000 + b"}") in (
        "invalid_json", "bad_field_type")


def test_matcher_handles_pathological_tokens() -> None:
    matcher = TemplateMatcher(ParserConfig(), TABLE)
    for message in ["<*> " * 1000, "a" * 100000, " ".join(str(i) for i in range(20000)), "\t\n\r"]:
        parsed = matcher.parse(message)
        assert parsed.template_id


def test_a_flood_of_distinct_keys_keeps_memory_bounded() -> None:
    config = PipelineConfig(
        record=RecordFormat(kind="json", source_field="source"),
        source=SourceKeyConfig(kind="field"),
        window=WindowConfig(kind="session", gap_s=1e9, max_open_keys=500, max_events=8),
    )
    pipeline = Pipeline(config, TABLE)

    def flood(start: int, count: int) -> None:
        for i in range(start, start + count):
            value = b'{"source": "k%d", "message": "user %d logged in"}' % (i, i)
            pipeline.process(value, Position("logs", 0, i))

    flood(0, 5_000)  # warm-up: the key bound is reached
    tracemalloc.start()
    flood(5_000, 5_000)
    after_first, _ = tracemalloc.get_traced_memory()
    flood(10_000, 15_000)
    after_second, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert pipeline.windower.open_keys == 500
    assert pipeline.windower.stats.evicted == 24_500
    # Three times more keys must not cost more memory (caches are bounded LRUs).
    assert after_second < after_first * 1.5 + 500_000



def _rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc (Linux)")
def test_a_million_distinct_keys_keep_memory_bounded() -> None:
    """The issue's scale: 1,000,000 distinct source keys. Resident memory, not tracemalloc
    (which would make a million records take minutes): state kept per key would cost well
    over 100 MB for the last 900,000 keys; the bounded windower and caches cost nothing."""
    config = PipelineConfig(
        record=RecordFormat(kind="json", source_field="source"),
        source=SourceKeyConfig(kind="field"),
        window=WindowConfig(kind="session", gap_s=1e9, max_open_keys=1_000, max_events=8),
    )
    pipeline = Pipeline(config, TABLE)
    for i in range(1_000_000):
        if i == 100_000:  # warm-up done: the key bound and the caches are full
            before = _rss_bytes()
        value = b'{"source": "k%d", "message": "user %d logged in"}' % (i, i)
        pipeline.process(value, Position("logs", 0, i))
    grown_mb = (_rss_bytes() - before) / 2**20
    assert pipeline.windower.open_keys == 1_000
    assert pipeline.windower.stats.evicted == 999_000
    assert grown_mb < 32, f"resident memory grew {grown_mb:.0f} MB over 900,000 new keys"

# -- a model bundle is data, never code: no pickle is ever loaded ----------------------------------
class _Plant:
    """Unpickling this creates ``path``: proof that a pickle ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        import builtins

        return builtins.open, (self.path, "w")


@pytest.fixture
def probe_bundle(tmp_path: Path) -> Path:
    from streamer.testing import build_probe_bundle

    return build_probe_bundle(tmp_path / "bundle", HDFS, TABLE)


def test_loading_and_scoring_a_bundle_never_unpickles(probe_bundle: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Every pickle entry point raises while the bundle loads and scores: it still works."""
    import pickle

    from logprompt.bundle import load_bundle

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle used while loading a bundle")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    scorer = load_bundle(probe_bundle, execution_provider="cpu", variant="fp32")
    prompt = scorer.encoder.encode(list(TABLE.templates[:1]), TABLE.ids()[:1])
    assert 0.0 <= float(scorer.score([prompt])[0]) <= 1.0


@pytest.mark.parametrize("name", ["model.pkl", "weights.bin", "checkpoint.pt"])
def test_a_pickle_in_a_bundle_is_refused_unread(probe_bundle: Path, tmp_path: Path,
                                                name: str) -> None:
    """By file name or by its pickle header (``weights.bin``), before any file is opened by
    the loader, at start and on hot reload alike (both go through load_scorer)."""
    import pickle

    from streamer.bundles import load_scorer
    from streamer.exceptions import BundleLoadError
    from streamer.settings import StreamerSettings

    marker = tmp_path / "pwned"
    (probe_bundle / name).write_bytes(pickle.dumps(_Plant(str(marker)), protocol=4))
    settings = StreamerSettings(bundle_path=probe_bundle, execution_provider="cpu")
    with pytest.raises(BundleLoadError, match=f"pickled files.*{name}"):
        load_scorer(settings)
    assert not marker.exists()


def test_a_pickle_posing_as_the_onnx_graph_is_refused_unread(probe_bundle: Path,
                                                             tmp_path: Path) -> None:
    """Even with a manifest whose checksums match the pickle, the graph file is refused."""
    import pickle

    from logprompt import bundle as b
    from streamer.bundles import load_scorer
    from streamer.exceptions import BundleLoadError
    from streamer.settings import StreamerSettings

    marker = tmp_path / "pwned"
    graph = probe_bundle / "model.onnx"
    graph.write_bytes(pickle.dumps(_Plant(str(marker))))
    manifest = b.read_manifest(probe_bundle, verify_files=False)
    files = {**manifest.files, "model.onnx": b.FileEntry(
        sha256=b.file_sha256(graph), bytes=graph.stat().st_size)}
    b.write_manifest(manifest.model_copy(update={"files": files}), probe_bundle)
    with pytest.raises(BundleLoadError, match="model.onnx"):
        load_scorer(StreamerSettings(bundle_path=probe_bundle, execution_provider="cpu"))
    assert not marker.exists()
