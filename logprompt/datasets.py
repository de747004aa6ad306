"""Labelled windows from the Loghub files in ``../shared/datasets``, through the same
:class:`~logprompt.pipeline.Pipeline` the streamer uses.

Protocol, the same for every data set:
1. Split chronologically *before* cutting windows: records (or, for per-session data, sessions
   by first appearance) go to train / val / test in time order, so no window straddles a split.
2. Learn templates on the training records only; freeze them.
3. Feed each split's records, one at a time, through a fresh Pipeline with the frozen table.
4. A window is anomalous when any of its lines is (line labels) or its session is (session
   labels).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import orjson

from logprompt.parsing import TemplateLearner, TemplateTable
from logprompt.pipeline import Pipeline, PipelineConfig
from logprompt.presets import preset
from logprompt.records import DecodeError, decode_record
from logprompt.sources import source_keys
from logprompt.windows import Position, Window

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")


def default_datasets_root() -> Path:
    """``$LOGPROMPT_DATASETS`` or ``../shared/datasets`` beside the checkout."""
    env = os.environ.get("LOGPROMPT_DATASETS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "datasets"


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as it would be produced to Kafka, with its label where known."""

    value: bytes
    position: Position
    label: int | None = None  # per line; None where labels are per session


@dataclass(frozen=True, slots=True)
class LabelledWindow:
    window: Window
    label: int
    split: Split


@dataclass
class Dataset:
    name: str
    config: PipelineConfig
    table: TemplateTable
    windows: dict[Split, list[LabelledWindow]] = field(default_factory=dict)
    records: dict[Split, list[RawRecord]] = field(default_factory=dict)
    session_labels: dict[str, int] | None = None

    def summary(self) -> dict[str, object]:
        return {
            "name": self.name,
            "templates": len(self.table.templates),
            **{
                f"{s}_windows": len(self.windows.get(s, [])) for s in SPLITS
            },
            **{
                f"{s}_anomalous": sum(w.label for w in self.windows.get(s, [])) for s in SPLITS
            },
        }


# -- readers: raw records in time order --------------------------------------------------------
def read_lines(path: Path, topic: str | None = None, limit: int | None = None) -> Iterator[RawRecord]:
    """Lines of a plain or gzip text file as records; position = (file name, 0, line index)."""
    opener = gzip.open if path.suffix == ".gz" else open
    name = topic or path.name
    with opener(path, "rb") as handle:
        for index, line in enumerate(handle):
            if limit is not None and index >= limit:
                return
            yield RawRecord(line.rstrip(b"\r\n"), Position(name, 0, index))


def _loghub_alert_label(value: bytes) -> int:
    """BGL/Thunderbird: the first field is '-' for normal lines, an alert category otherwise."""
    return 0 if value.startswith(b"- ") else 1


def read_bgl_templated(path: Path, limit: int | None = None) -> Iterator[tuple[str, RawRecord]]:
    """(split, record) pairs of BGL_templated_windows.tsv.gz, in time order."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        next(handle)  # header
        for index, line in enumerate(handle):
            if limit is not None and index >= limit:
                return
            split, _start, _pos, label, template = line.rstrip("\n").split("\t", 4)
            record = RawRecord(template.encode(), Position(path.name, 0, index), int(label))
            yield split, record


def read_openstack(root: Path) -> tuple[list[RawRecord], dict[str, int]]:
    """OpenStack sequences as JSON records, instance by instance, with per-instance labels."""
    templates = (root / "OpenStack_templates.csv").read_text().splitlines()
    records: list[RawRecord] = []
    labels: dict[str, int] = {}
    for file, label in (("openstack_train", 0), ("openstack_test_normal", 0),
                        ("openstack_test_abnormal", 1)):
        for line in (root / file).read_text().splitlines():
            instance, _, ids = line.partition(",")
            labels[instance] = label
            for event_id in ids.split():
                value = orjson.dumps({"instance": instance, "message": templates[int(event_id) - 1]})
                records.append(RawRecord(value, Position(file, 0, len(records))))
    return records, labels


def read_hdfs_labels(path: Path) -> dict[str, int]:
    labels: dict[str, int] = {}
    for line in path.read_text().splitlines()[1:]:
        block, _, label = line.partition(",")
        labels[block] = 1 if label.strip() == "Anomaly" else 0
    return labels


# -- the protocol ---------------------------------------------------------------------------------
def split_by_position(records: list[RawRecord], fractions: tuple[float, float, float]
                      ) -> dict[Split, list[RawRecord]]:
    """Chronological split of line-labelled records by position."""
    n = len(records)
    a = int(n * fractions[0])
    b = int(n * (fractions[0] + fractions[1]))
    return {"train": records[:a], "val": records[a:b], "test": records[b:]}


def split_by_session(records: list[RawRecord], config: PipelineConfig,
                     fractions: tuple[float, float, float]) -> dict[Split, list[RawRecord]]:
    """Chronological split of sessions by first appearance; a record goes to every split that
    one of its sessions belongs to (so a window never straddles a split)."""
    first_seen: dict[str, int] = {}
    keys_of: list[list[str]] = []
    for record in records:
        try:
            keys = source_keys(decode_record(record.value, config.record), config.source)
        except DecodeError:
            keys = []
        keys_of.append(keys)
        for key in keys:
            first_seen.setdefault(key, len(first_seen))
    n = len(first_seen)
    a, b = int(n * fractions[0]), int(n * (fractions[0] + fractions[1]))

    def split_of(rank: int) -> Split:
        return "train" if rank < a else "val" if rank < b else "test"

    out: dict[Split, list[RawRecord]] = {s: [] for s in SPLITS}
    for record, keys in zip(records, keys_of, strict=True):
        for split in dict.fromkeys(split_of(first_seen[k]) for k in keys):
            out[split].append(record)
    return out


def learn_templates(config: PipelineConfig, records: list[RawRecord]) -> TemplateTable:
    """Drain learns on these (training) records only."""
    learner = TemplateLearner(config.parser)
    for record in records:
        try:
            learner.learn(decode_record(record.value, config.record).message)
        except DecodeError:
            continue
    return learner.table()


def cut_windows(config: PipelineConfig, table: TemplateTable, records: list[RawRecord],
                keys: set[str] | None = None) -> list[Window]:
    """Feed records one at a time through a fresh Pipeline and flush at the end."""
    pipeline = Pipeline(config, table)
    windows: list[Window] = []
    for record in records:
        try:
            processed = pipeline.process(record.value, record.position, record.label)
        except DecodeError:
            continue
        windows.extend(processed.windows)
    windows.extend(pipeline.flush())
    if keys is not None:
        windows = [w for w in windows if w.key in keys]
    return windows


def build_dataset(name: str, config: PipelineConfig, splits: dict[Split, list[RawRecord]],
                  session_labels: dict[str, int] | None = None) -> Dataset:
    table = learn_templates(config, splits["train"])
    dataset = Dataset(name, config, table, records=splits, session_labels=session_labels)
    split_keys: dict[Split, set[str]] | None = None
    if session_labels is not None:
        split_keys = _keys_by_split(config, splits)
    for split in SPLITS:
        keys = split_keys[split] if split_keys is not None else None
        windows = cut_windows(config, table, splits[split], keys)
        dataset.windows[split] = [
            LabelledWindow(w, window_label(w, session_labels), split) for w in windows
        ]
    return dataset


def _keys_by_split(config: PipelineConfig, splits: dict[Split, list[RawRecord]]
                   ) -> dict[Split, set[str]]:
    """Session data: each session belongs to the split where it first appeared."""
    owner: dict[str, Split] = {}
    for split in SPLITS:
        for record in splits[split]:
            try:
                keys = source_keys(decode_record(record.value, config.record), config.source)
            except DecodeError:
                continue
            for key in keys:
                owner.setdefault(key, split)
    out: dict[Split, set[str]] = {s: set() for s in SPLITS}
    for key, split in owner.items():
        out[split].add(key)
    return out


def window_label(window: Window, session_labels: dict[str, int] | None) -> int:
    if session_labels is not None:
        return session_labels.get(window.key, 0)
    return int(any(e.label for e in window.events))


# -- named data sets ------------------------------------------------------------------------------
DATASET_NAMES = ("hdfs", "hdfs_2k", "bgl_templated", "bgl_2k", "thunderbird_2k", "openstack",
                 "synthetic")


def load_dataset(name: str, root: Path | None = None, config: PipelineConfig | None = None,
                 fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
                 limit: int | None = None) -> Dataset:
    """Load a named data set, or a data set spec file (``*.toml``, see :mod:`logprompt.spec`),
    as labelled windows. Raises FileNotFoundError when its files are absent."""
    if name.endswith(".toml"):
        from logprompt.spec import load_spec_dataset

        return load_spec_dataset(Path(name), limit=limit)
    root = root or default_datasets_root()
    if name in ("hdfs", "hdfs_2k"):
        stem = "HDFS_2pct" if name == "hdfs" else "HDFS_2k"
        log = root / "hdfs" / (f"{stem}.log.gz" if name == "hdfs" else f"{stem}.log")
        labels = read_hdfs_labels(_need(root / "hdfs" / f"{stem}.anomaly_label.csv"))
        config = config or preset("hdfs")
        records = list(read_lines(_need(log), limit=limit))
        return build_dataset(name, config, split_by_session(records, config, fractions), labels)
    if name == "bgl_templated":
        config = config or preset("bgl_templated")
        train: list[RawRecord] = []
        test: list[RawRecord] = []
        path = _need(root / "bgl" / "BGL_templated_windows.tsv.gz")
        for split, record in read_bgl_templated(path, limit):
            (train if split == "train" else test).append(record)
        # Validation: the last 20% of the training split, cut on a window boundary.
        size = config.window.size
        cut = (int(len(train) * 0.8) // size) * size
        return build_dataset(name, config, {"train": train[:cut], "val": train[cut:], "test": test})
    if name in ("bgl_2k", "thunderbird_2k"):
        file = root / ("bgl/BGL_2k.log" if name == "bgl_2k" else "thunderbird/Thunderbird_2k.log")
        config = config or preset("bgl_raw" if name == "bgl_2k" else "thunderbird")
        records = [
            RawRecord(r.value, r.position, _loghub_alert_label(r.value))
            for r in read_lines(_need(file), limit=limit)
        ]
        return build_dataset(name, config, split_by_position(records, fractions))
    if name == "synthetic":
        from logprompt import synthetic

        config = config or preset("synthetic")
        lines, labels = synthetic.generate(n_sessions=limit or 2000)
        records = [RawRecord(value, Position("synthetic", 0, i))
                   for i, value in enumerate(synthetic.json_lines(lines))]
        return build_dataset(name, config, split_by_session(records, config, fractions), labels)
    if name == "openstack":
        config = config or preset("openstack")
        records, labels = read_openstack(_need(root / "openstack"))
        return build_dataset(name, config, split_by_session(records, config, fractions), labels)
    raise ValueError(f"unknown data set {name!r}; known: {DATASET_NAMES}")


def _need(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"data set file not found: {path} (set LOGPROMPT_DATASETS)")
    return path
