"""The fault suite's input and bundles, and what "right" means for each scenario.

Input: synthetic service logs (``logprompt.synthetic``, JSON lines, session windows with a
5 s gap per request id), keyed by request id so one source stays in one partition. Needs no
data set, so CI and the bench run the same scenarios.

Bundles: probe bundles in the real serving format (``streamer.testing``), calibrated so that
about 20% of the windows alert. ``v2`` has the same pipeline and template table as ``v1`` but
another graph (other weights and threshold), so it cuts the same windows and scores them
differently; ``corrupt`` is ``v1`` with a garbage ONNX file (and a changed manifest, so the
streamer notices it).
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

from logprompt.alerts import Alert
from logprompt.datasets import RawRecord, cut_windows, learn_templates
from logprompt.presets import preset
from logprompt.synthetic import generate, json_lines
from logprompt.windows import Position


@dataclass(frozen=True)
class Reference:
    """Offline scoring of the whole input with one bundle: alert id -> score."""

    model_version: str
    alerts: dict[str, float]
    windows: int


@dataclass(frozen=True)
class Workload:
    values: list[bytes]
    keys: list[bytes]
    v1: Path
    v2: Path
    corrupt: Path
    ref_v1: Reference
    ref_v2: Reference


def offline_reference(bundle: Path, records: list[RawRecord]) -> Reference:
    from logprompt.bundle import load_bundle

    scorer = load_bundle(bundle, execution_provider="cpu", variant="fp32")
    windows = cut_windows(scorer.pipeline_config, scorer.table, records)
    scores = scorer.score_windows(windows)
    alerts = {w.window_id: float(s) for w, s in zip(windows, scores, strict=True)
              if s >= scorer.threshold}
    return Reference(scorer.model_version, alerts, len(windows))


def build_workload(out: Path, lines: int, seed: int = 11) -> Workload:
    """About ``lines`` input lines (whole sessions) and the three bundles, under ``out``."""
    from streamer.testing import build_calibrated_probe_bundle

    synthetic, _ = generate(n_sessions=max(20, lines // 6), seed=seed)
    values = list(json_lines(synthetic))
    keys = [orjson.loads(v)["source"].encode() for v in values]
    records = [RawRecord(v, Position("replay", 0, i)) for i, v in enumerate(values)]
    config = preset("synthetic")
    table = learn_templates(config, records[: len(records) // 2])
    windows = cut_windows(config, table, records)
    v1 = build_calibrated_probe_bundle(out / "v1", config, table, windows, alert_share=0.2, seed=0)
    v2 = build_calibrated_probe_bundle(out / "v2", config, table, windows, alert_share=0.2, seed=3)
    corrupt = out / "corrupt"
    shutil.rmtree(corrupt, ignore_errors=True)
    shutil.copytree(v1, corrupt)
    (corrupt / "model.onnx").write_bytes(b"\x00 not an onnx graph \xff" * 64)
    manifest = corrupt / "manifest.json"
    manifest.write_text(manifest.read_text() + "\n")
    return Workload(values, keys, v1, v2, corrupt, offline_reference(v1, records),
                    offline_reference(v2, records))


@dataclass
class Outcome:
    """Committed alerts against the reference. ``lost``: expected, not committed;
    ``duplicated``: committed more than once (copies beyond the first); ``extra``: committed,
    not expected (or with another score)."""

    alerts: int
    expected: int
    lost: int
    duplicated: int
    extra: int
    versions: dict[str, int]

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.extra == 0


def _versions(alerts: Iterable[Alert]) -> dict[str, int]:
    return dict(Counter(a.model_version for a in alerts))


def compare(alerts: list[Alert], ref: Reference, tolerance: float = 1e-5) -> Outcome:
    """Exact comparison with one model's reference (every scenario but the new-bundle reload)."""
    counts = Counter(a.alert_id for a in alerts)
    extra = {a.alert_id for a in alerts
             if a.alert_id not in ref.alerts or abs(a.score - ref.alerts[a.alert_id]) > tolerance}
    return Outcome(len(alerts), len(ref.alerts), len(set(ref.alerts) - set(counts)),
                   sum(c - 1 for c in counts.values()), len(extra), _versions(alerts))


def compare_switch(alerts: list[Alert], old: Reference, new: Reference,
                   tolerance: float = 1e-5) -> Outcome:
    """A hot reload of a *different* model mid-stream. Both bundles cut the same windows (same
    pipeline and table); each window is scored by exactly one of them, whichever served when
    it closed, and which one that is depends on timing. So:

    * each committed alert must be what the model it names gives: its id alerts under that
      model, with that score (else ``extra``);
    * a window that alerts under both models must be committed (else ``lost``), whichever
      model scored it; a window that alerts under only one may or may not be;
    * no window is committed twice, not even once per model (``duplicated``).
    """
    by_version = {old.model_version: old.alerts, new.model_version: new.alerts}
    counts = Counter(a.alert_id for a in alerts)
    extra = 0
    for a in alerts:
        ref = by_version.get(a.model_version, {})
        if a.alert_id not in ref or abs(a.score - ref[a.alert_id]) > tolerance:
            extra += 1
    must = set(old.alerts) & set(new.alerts)
    return Outcome(len(alerts), len(must), len(must - set(counts)),
                   sum(c - 1 for c in counts.values()), extra, _versions(alerts))
