"""Data set loaders: chronological split before windowing, labels from lines or sessions."""

from __future__ import annotations

from pathlib import Path

import pytest

from logprompt.datasets import SPLITS, RawRecord, load_dataset, split_by_position
from logprompt.windows import Position


def test_session_split_is_chronological_and_disjoint() -> None:
    dataset = load_dataset("synthetic", limit=500)
    keys = {s: {lw.window.key for lw in dataset.windows[s]} for s in SPLITS}
    assert not (keys["train"] & keys["val"]) and not (keys["val"] & keys["test"])
    last_train = max(lw.window.start_time or 0 for lw in dataset.windows["train"])
    first_test = min(lw.window.start_time or 0 for lw in dataset.windows["test"])
    assert last_train < first_test
    for lw in dataset.windows["test"]:
        assert lw.label == dataset.session_labels[lw.window.key]  # type: ignore[index]


def test_templates_are_learned_on_the_training_split_only() -> None:
    dataset = load_dataset("synthetic", limit=500)
    assert sum(dataset.table.counts) <= len(dataset.records["train"])


def test_position_split_labels_windows_by_their_lines() -> None:
    records = [RawRecord(b"x", Position("f", 0, i), int(i == 7)) for i in range(10)]
    parts = split_by_position(records, (0.6, 0.2, 0.2))
    assert [len(parts[s]) for s in SPLITS] == [6, 2, 2]
    assert parts["val"][1].label == 1


@pytest.mark.datasets
def test_hdfs_2k_windows_are_block_sessions(datasets_root: Path) -> None:
    dataset = load_dataset("hdfs_2k", root=datasets_root)
    windows = [lw for s in SPLITS for lw in dataset.windows[s]]
    assert all(w.window.key.startswith("blk_") for w in windows)
    assert sum(w.label for w in windows) > 0
    assert len({w.window.key for w in windows}) == len(windows)  # one session per block


@pytest.mark.datasets
def test_bgl_2k_windows_carry_line_labels(datasets_root: Path) -> None:
    dataset = load_dataset("bgl_2k", root=datasets_root)
    for lw in dataset.windows["train"]:
        assert lw.label == int(any(e.label for e in lw.window.events))
