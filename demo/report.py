"""``logprompt report``: streamed alerts against labels, beside the offline evaluation of the
same bundle on the same windows, as markdown and PNGs in one directory.

The streamed and offline figures must agree: both come from the same windows (the core
pipeline) and the same ONNX model; a difference points at a window the stream cut differently
(its id would then match no offline window, counted as ``unmatched``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from logprompt.alerts import Alert
from logprompt.bundle import load_bundle
from logprompt.datasets import Dataset, LabelledWindow


@dataclass
class EvaluationInput:
    dataset: Dataset
    split: str
    bundle: Path
    alerts: list[Alert]
    seconds: float | None = None
    progress: list[tuple[float, int]] = field(default_factory=list)  # (seconds, lines committed)


@dataclass
class ReportResult:
    path: Path
    streaming: dict[str, float]
    offline: dict[str, float]


def confusion(labels: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    tp = int(np.sum(labels & predicted))
    fp = int(np.sum(~labels & predicted))
    fn = int(np.sum(labels & ~predicted))
    tn = int(np.sum(~labels & ~predicted))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1,
            "specificity": tn / (tn + fp) if tn + fp else 0.0, "tp": tp, "fp": fp, "fn": fn,
            "tn": tn, "windows": len(labels), "anomalous": int(labels.sum()),
            "predicted": int(predicted.sum())}


def write_report(data: EvaluationInput, out: Path) -> ReportResult:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    # fp32, as the streamer serves by default: int8 scores depend on batch composition.
    scorer = load_bundle(data.bundle, execution_provider="cpu", variant="fp32")
    windows: list[LabelledWindow] = data.dataset.windows[data.split]  # type: ignore[index]
    scores = scorer.score_windows([lw.window for lw in windows])
    labels = np.array([lw.label == 1 for lw in windows], dtype=bool)
    offline_pred = scores >= scorer.threshold
    alert_ids = {a.alert_id for a in data.alerts}
    ids = [lw.window.window_id for lw in windows]
    stream_pred = np.array([i in alert_ids for i in ids], dtype=bool)
    unmatched = len(alert_ids - set(ids))
    offline = confusion(labels, offline_pred)
    streaming = confusion(labels, stream_pred)
    streaming["unmatched_alerts"] = unmatched
    streaming["fp"] += unmatched
    by_id = {a.alert_id: a for a in data.alerts}
    score_diff = max((abs(by_id[i].score - float(s)) for i, s in zip(ids, scores, strict=True)
                      if i in by_id), default=0.0)

    # Alerts over (event) time against the true anomalies.
    fig, ax = plt.subplots(figsize=(9, 3.2))
    ends = np.array([lw.window.end_time or 0.0 for lw in windows])
    base = ends.min() if len(ends) else 0.0
    span = float(ends.max() - base) if len(ends) else 0.0
    unit, seconds_per_unit = next((u, s) for u, s in (("hours", 3600.0), ("minutes", 60.0),
                                                      ("seconds", 1.0)) if span >= 2 * s or s == 1)
    when = (ends - base) / seconds_per_unit
    ax.scatter(when[labels], np.ones(labels.sum()), marker="|", s=300, label="labelled anomalous")
    ax.scatter(when[stream_pred], np.zeros(stream_pred.sum()), marker="|", s=300, color="C3",
               label="streamed alert")
    ax.set_yticks([0, 1], ["alerts", "truth"])
    ax.set_ylim(-0.6, 1.6)
    ax.set_xlabel(f"{unit} since the first window of the slice (event time)")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("Alerts over time against labelled anomalies")
    fig.tight_layout()
    fig.savefig(out / "alerts_over_time.png", dpi=110)
    plt.close(fig)

    # Score distributions per label, with the threshold.
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = [float(b) for b in np.linspace(0, 1, 41)]
    ax.hist(scores[~labels], bins=bins, alpha=0.7, label="normal windows", log=True)
    ax.hist(scores[labels], bins=bins, alpha=0.7, label="anomalous windows", log=True)
    ax.axvline(scorer.threshold, color="k", linestyle="--", label=f"threshold {scorer.threshold:.3f}")
    ax.set_xlabel("anomaly probability")
    ax.set_ylabel("windows (log)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "score_distribution.png", dpi=110)
    plt.close(fig)

    # Throughput over the run and alert latency (alert time after the run's start).
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    if data.progress:
        t, done = zip(*data.progress, strict=True)
        axes[0].plot(t, done)
    axes[0].set_xlabel("seconds since the replay started")
    axes[0].set_ylabel("lines committed")
    axes[0].set_title("Throughput")
    if data.alerts:
        detected = np.sort([a.detected_at for a in data.alerts])
        axes[1].plot(detected - detected[0], np.arange(1, len(detected) + 1))
    axes[1].set_xlabel("seconds since the first alert")
    axes[1].set_ylabel("alerts published")
    axes[1].set_title("Alerts over the run (wall clock)")
    fig.tight_layout()
    fig.savefig(out / "throughput.png", dpi=110)
    plt.close(fig)

    texts = dict(zip(scorer.table.ids(), scorer.table.templates, strict=True))
    top = Counter(t for a in data.alerts for t in dict.fromkeys(a.template_ids)).most_common(10)

    def row(name: str, m: dict[str, float]) -> str:
        return (f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | "
                f"{m['specificity']:.3f} | {m['tp']} | {m['fp']} | {m['fn']} | {m['tn']} |")

    lines = [
        f"# logprompt report: {data.dataset.name}, {data.split} slice", "",
        f"Bundle `{data.bundle}` (model {scorer.model_version}, threshold {scorer.threshold:.4f}).",
        f"{len(windows):,} windows, {int(labels.sum())} labelled anomalous; "
        f"{len(data.alerts):,} alerts read from the alerts topic (read_committed).", "",
        "| | precision | recall | F1 | specificity | TP | FP | FN | TN |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        row("streamed alerts", streaming), row("offline, same bundle and windows", offline), "",
        f"Alerts whose id matches no offline window: {unmatched}. Largest difference between a "
        f"streamed and an offline score of the same window: {score_diff:.2e}.", "",
    ]
    if data.seconds:
        n_lines = len(data.dataset.records.get(data.split, []))  # type: ignore[call-overload]
        lines += [f"Throughput: {n_lines:,} lines from the start of the replay to the last commit "
                  f"in {data.seconds:.1f} s ({n_lines / data.seconds:,.0f} lines/s).", ""]
    lines += ["![alerts over time](alerts_over_time.png)", "",
              "![score distribution](score_distribution.png)", "", "![throughput](throughput.png)",
              "", "## Templates in the most alerts", "", "| template id | alerts | template |",
              "| --- | --- | --- |"]
    lines += [f"| {t} | {n} | `{texts.get(t, '(not in the training table)')}` |" for t, n in top]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return ReportResult(out, streaming, offline)
