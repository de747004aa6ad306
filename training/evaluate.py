"""Evaluate a checkpoint against both baselines on the same splits and the same labelled
sample, and write a report directory (``report.json``, ``report.md``, ``pr_curves.png``).

Thresholds of every method come from the validation split; the test split is only scored.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from logprompt.datasets import Dataset, Split, load_dataset
from logprompt.prompts import PromptEncoder
from training.baselines import CountsLogisticRegression, UnseenTemplateDetector, best_logreg
from training.data import LabelBudget, describe_sample, encode_windows, sample_labelled, window_keys
from training.metrics import best_threshold, binary_metrics
from training.model import load_checkpoint, load_pipeline
from training.scoring import score_prompts

METHODS = ("prompt_model", "logreg_counts", "logreg_best", "unseen_templates",
           "unseen_templates_labelled")


def _labels(dataset: Dataset, split: Split) -> np.ndarray:
    return np.array([w.label for w in dataset.windows[split]])


def baseline_scores(dataset: Dataset, picked: list[int]) -> dict[str, dict[str, np.ndarray]]:
    """Validation and test scores of the baselines for one labelled sample."""
    train = dataset.windows["train"]
    labelled = [train[i] for i in picked]
    lr = CountsLogisticRegression(dataset.table.ids()).fit(labelled)
    y_val = _labels(dataset, "val")
    lr_best = best_logreg(dataset.table.ids(), labelled, dataset.windows["val"],
                          lambda s: best_threshold(s, y_val)[1])
    unseen_all = UnseenTemplateDetector(train)
    unseen_lab = UnseenTemplateDetector(labelled)
    splits: tuple[Split, Split] = ("val", "test")
    out: dict[str, dict[str, np.ndarray]] = {}
    detectors: tuple[tuple[str, Any], ...] = (
        ("logreg_counts", lr), ("logreg_best", lr_best), ("unseen_templates", unseen_all),
        ("unseen_templates_labelled", unseen_lab))
    for name, det in detectors:
        out[name] = {s: det.score(dataset.windows[s]) for s in splits}
    return out


def transform_of(dataset: Dataset, picked: list[int]) -> str:
    train = dataset.windows["train"]
    y_val = _labels(dataset, "val")
    return best_logreg(dataset.table.ids(), [train[i] for i in picked], dataset.windows["val"],
                       lambda s: best_threshold(s, y_val)[1]).transform


def evaluate(checkpoint: Path, out: Path | None = None, dataset: Dataset | None = None,
             datasets_root: Path | None = None, reuse_scores: bool = True,
             device: str = "cpu") -> dict[str, Any]:
    """Score the checkpoint and the baselines; write the report to ``out`` (default
    ``<checkpoint>/report``) and return it."""
    import torch

    torch.set_num_threads(2)
    out = out or checkpoint / "report"
    out.mkdir(parents=True, exist_ok=True)
    pipeline, table = load_pipeline(checkpoint)
    model, info = load_checkpoint(checkpoint, device)
    source = info.get("dataset_source") or info["dataset"]
    dataset = dataset or load_dataset(source, datasets_root, config=pipeline)
    budget = LabelBudget.model_validate({k: info["label_budget"].get(k) for k in (
        "count", "fraction", "selection", "min_anomalies") if k in info["label_budget"]})
    train_labels = _labels(dataset, "train")
    picked = sample_labelled(train_labels.tolist(), budget, info["label_sample"],
                             window_keys(dataset.windows["train"]))
    splits: tuple[Split, Split] = ("val", "test")
    y = {s: _labels(dataset, s) for s in splits}

    t0 = time.perf_counter()
    cached = checkpoint / "scores.npz"
    scores: dict[str, dict[str, np.ndarray]] = {}
    if reuse_scores and cached.exists():
        arrays = np.load(cached)
        if "test_scores" in arrays and len(arrays["test_scores"]) == len(y["test"]) \
                and len(arrays["val_scores"]) == len(y["val"]):
            scores["prompt_model"] = {"val": arrays["val_scores"], "test": arrays["test_scores"]}
    if "prompt_model" not in scores:
        from tokenizers import Tokenizer

        encoder = PromptEncoder(Tokenizer.from_file(str(checkpoint / "tokenizer.json")),
                                pipeline.prompt, table.ids())
        scores["prompt_model"] = {
            s: score_prompts(model, encode_windows(encoder, dataset.windows[s]),
                             encoder.pad_id, 64, device) for s in splits}
    model_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    scores |= baseline_scores(dataset, picked)
    baseline_seconds = time.perf_counter() - t1

    results: dict[str, Any] = {}
    for name in METHODS:
        s = scores[name]
        if name == "prompt_model":
            thr = float(info["threshold"])
            val_f1 = binary_metrics(s["val"], y["val"], thr)["f1"]
        else:
            thr, val_f1 = best_threshold(s["val"], y["val"])
        results[name] = {"val_f1": val_f1, "test": binary_metrics(s["test"], y["test"], thr)}
    report = {
        "logreg_best_transform": transform_of(dataset, picked),
        "checkpoint": str(checkpoint), "dataset": dataset.name,
        "label_sample": info["label_sample"],
        "labelled": describe_sample(train_labels.tolist(), picked),
        "label_budget": budget.model_dump(), "results": results,
        "timing": {**info.get("metrics", {}).get("timing", {}),
                   "evaluate_model_seconds": round(model_seconds, 2),
                   "evaluate_baselines_seconds": round(baseline_seconds, 2)},
        "train_config": info.get("train_config", {}),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(render_markdown(report))
    plot_pr_curves({n: scores[n]["test"] for n in METHODS}, y["test"], out / "pr_curves.png",
                   title=f"{dataset.name}, test, {report['labelled']['windows']} labelled windows")
    return report


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Evaluation of {report['checkpoint']}",
        "",
        f"Data set `{report['dataset']}`, label sample {report['label_sample']}: "
        f"{report['labelled']['windows']} labelled training windows "
        f"({report['labelled']['anomalous']} anomalous) of {report['labelled']['train_windows']}."
        " Thresholds from validation; figures on test.",
        "",
        "| method | P | R | F1 | specificity | PR-AUC | TP | FP | FN | TN | val F1 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in report["results"].items():
        t, c = r["test"], r["test"]["confusion"]
        lines.append(
            f"| {name} | {t['precision']:.3f} | {t['recall']:.3f} | {t['f1']:.3f} | "
            f"{t['specificity']:.3f} | {t['pr_auc']:.3f} | {c['tp']} | {c['fp']} | {c['fn']} | "
            f"{c['tn']} | {r['val_f1']:.3f} |")
    lines += ["", "Timing: " + json.dumps(report["timing"]), "", "![PR curves](pr_curves.png)", ""]
    return "\n".join(lines)


def plot_pr_curves(scores: dict[str, np.ndarray], labels: np.ndarray, path: Path,
                   title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, s in scores.items():
        if labels.sum() == 0:
            break
        p, r, _ = precision_recall_curve(labels, s)
        ax.step(r, p, where="post", label=name)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
