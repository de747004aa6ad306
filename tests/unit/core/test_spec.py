"""A data set spec (your own log format) loads through the same protocol as the presets."""

from __future__ import annotations

from pathlib import Path

from demo.synth import write_synthetic
from logprompt.datasets import load_dataset
from logprompt.spec import pipeline_from_dict, read_spec


def test_spec_of_an_unknown_text_format_gives_labelled_sessions(tmp_path: Path) -> None:
    spec_path = write_synthetic(tmp_path, sessions=300)
    spec, config = read_spec(spec_path)
    assert config.record.kind == "text" and config.source.kind == "regex"
    assert config.record.source_field == "source"  # inherited from the json preset
    dataset = load_dataset(str(spec_path))
    assert dataset.name == "shop"
    windows = [lw for split in ("train", "val", "test") for lw in dataset.windows[split]]
    assert len(windows) == 300 and all(w.window.key.startswith("req-") for w in windows)
    assert sum(w.label for w in windows) > 0
    assert "token validated for user <*> in <*> ms" in dataset.table.templates


def test_pipeline_overrides_merge_into_the_preset() -> None:
    config = pipeline_from_dict({"preset": "hdfs", "window": {"gap_s": 10.0}})
    assert config.window.gap_s == 10.0 and config.window.kind == "session"
    assert config.source.pattern == r"(blk_-?\d+)"
