"""Post-export validation: ONNX Runtime against PyTorch on real (or rendered) windows.

fp32: every output must match PyTorch within :data:`FP32_TOLERANCE` (max abs diff), or the
export fails naming each output and its difference. int8: the share of decisions unchanged at
the threshold and the drift of the anomaly probability are measured and recorded; a floor on
the agreement is optional (``min_int8_agreement``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import structlog

from export.exceptions import ValidationFailedError
from logprompt.bundle import GRAPH_INPUTS, GRAPH_OUTPUTS, Fp32Check, Int8Check
from logprompt.parsing import TemplateTable
from logprompt.pipeline import PipelineConfig
from logprompt.prompts import EncodedPrompt, PromptEncoder, pad_batch
from logprompt.windows import Window

log = structlog.get_logger(__name__)

# Max abs difference allowed between ONNX Runtime (fp32) and PyTorch, per output.
FP32_TOLERANCE: dict[str, float] = {"logits": 1e-3, "anomaly_probability": 1e-4}
VALIDATION_BATCH = 16  # small enough that batches mix lengths and padding


@dataclass(frozen=True)
class ValidationSet:
    prompts: list[EncodedPrompt]
    labels: list[int] | None
    source: str


def validation_set(encoder: PromptEncoder, pipeline: PipelineConfig, table: TemplateTable,
                   dataset: str | None, windows: Sequence[Window] | None = None,
                   limit: int = 256, datasets_root: Path | None = None,
                   seed: int = 0) -> ValidationSet:
    """Distinct prompts to validate on, first found of: the ``windows`` given; the test split
    of the checkpoint's data set (anomalies first, up to half); synthetic windows drawn from
    the template table. All are rendered by ``encoder``, exactly as serving renders them."""
    if windows:
        prompts = _distinct([encoder.encode(w.templates, w.template_ids) for w in windows])
        return ValidationSet(_spread(prompts, limit), None, f"{len(windows)} given windows")
    if dataset:
        from logprompt.datasets import SPLITS, load_dataset

        split = None
        try:
            data = load_dataset(dataset, datasets_root, config=pipeline)
        except (FileNotFoundError, ValueError) as exc:
            log.warning("validation_dataset_unavailable", dataset=dataset, error=str(exc))
        else:
            split = next((s for s in SPLITS[::-1] if data.windows.get(s)), None)
        if split is not None:
            by_label: dict[int, list[EncodedPrompt]] = {0: [], 1: []}
            for lw in data.windows[split]:
                by_label[lw.label].append(encoder.encode(lw.window.templates,
                                                         lw.window.template_ids))
            anomalous = _spread(_distinct(by_label[1]), limit // 2)
            normal = _spread(_distinct(by_label[0]), limit - len(anomalous))
            return ValidationSet(anomalous + normal, [1] * len(anomalous) + [0] * len(normal),
                                 f"{dataset} {split} split, distinct windows")
    return ValidationSet(synthetic_prompts(encoder, pipeline, table, limit, seed), None,
                         "synthetic windows from the template table")


def synthetic_prompts(encoder: PromptEncoder, pipeline: PipelineConfig, table: TemplateTable,
                      n: int, seed: int = 0) -> list[EncodedPrompt]:
    """Random windows of the table's templates, of lengths from 1 to the window size (so that
    some fill ``max_length`` and are truncated)."""
    rng = random.Random(seed)
    templates = list(table.templates) or ["<*>"]
    ids = dict(zip(table.templates, table.ids(), strict=True))
    longest = max(pipeline.window.size if pipeline.window.kind == "sliding"
                  else min(pipeline.window.max_events, 64), 1)
    out = []
    for _ in range(n):
        chosen = [rng.choice(templates) for _ in range(rng.randint(1, longest))]
        out.append(encoder.encode(chosen, [ids.get(t, "00000000") for t in chosen]))
    return out


def torch_outputs(model: object, prompts: Sequence[EncodedPrompt], pad_id: int,
                  batch_size: int = VALIDATION_BATCH) -> dict[str, np.ndarray]:
    import torch

    from export.graph import ServingGraph

    graph = ServingGraph(model).eval()  # type: ignore[arg-type]
    parts: dict[str, list[np.ndarray]] = {name: [] for name in GRAPH_OUTPUTS}
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            feed = pad_batch(prompts[start : start + batch_size], pad_id)
            outputs = graph(*(torch.from_numpy(feed[name]) for name in GRAPH_INPUTS))
            for name, value in zip(GRAPH_OUTPUTS, outputs, strict=True):
                parts[name].append(value.float().numpy())
    return {name: np.concatenate(values) for name, values in parts.items()}


def ort_outputs(model_path: Path, prompts: Sequence[EncodedPrompt], pad_id: int,
                batch_size: int = VALIDATION_BATCH, threads: int = 0) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    parts: dict[str, list[np.ndarray]] = {name: [] for name in GRAPH_OUTPUTS}
    for start in range(0, len(prompts), batch_size):
        feed = pad_batch(prompts[start : start + batch_size], pad_id)
        for name, value in zip(GRAPH_OUTPUTS, session.run(list(GRAPH_OUTPUTS), feed),
                               strict=True):
            parts[name].append(np.asarray(value, dtype=np.float32))
    return {name: np.concatenate(values) for name, values in parts.items()}


def check_fp32(reference: dict[str, np.ndarray], onnx: dict[str, np.ndarray], source: str,
               tolerance: dict[str, float] | None = None) -> Fp32Check:
    """Max abs diff per output; raises :class:`ValidationFailedError` naming every output
    beyond its tolerance."""
    tolerance = tolerance or FP32_TOLERANCE
    diffs = {name: float(np.max(np.abs(onnx[name] - reference[name]), initial=0.0))
             for name in GRAPH_OUTPUTS}
    failing = {name: d for name, d in diffs.items() if not d <= tolerance[name]}  # NaN fails
    if failing:
        raise ValidationFailedError("fp32", failing, tolerance)
    return Fp32Check(windows=len(reference["anomaly_probability"]), source=source,
                     tolerance=tolerance, max_abs_diff=diffs)


def check_int8(fp32_probability: np.ndarray, int8_probability: np.ndarray, threshold: float,
               source: str, min_agreement: float | None = None) -> Int8Check:
    """Decision agreement at ``threshold`` and probability drift of int8 against fp32."""
    drift = np.abs(int8_probability - fp32_probability)
    same = (int8_probability >= threshold) == (fp32_probability >= threshold)
    check = Int8Check(
        windows=len(same), source=source,
        unchanged_decisions=float(same.mean()) if len(same) else 1.0,
        probability_drift_mean=float(drift.mean()) if len(drift) else 0.0,
        probability_drift_max=float(drift.max(initial=0.0)),
    )
    if not np.all(np.isfinite(int8_probability)):
        raise ValidationFailedError("int8", {"anomaly_probability": float("nan")},
                                    {"anomaly_probability": 1.0})
    require_int8_agreement(check, min_agreement)
    return check


def require_int8_agreement(check: Int8Check, min_agreement: float | None) -> None:
    """Fail the export when int8 keeps fewer decisions than ``min_agreement`` (if given)."""
    if min_agreement is not None and check.unchanged_decisions < min_agreement:
        raise ValidationFailedError("int8", {"unchanged_decisions": check.unchanged_decisions},
                                    {"unchanged_decisions": min_agreement})


def _distinct(prompts: Sequence[EncodedPrompt]) -> list[EncodedPrompt]:
    return list(dict.fromkeys(prompts))


def _spread(items: list[EncodedPrompt], n: int) -> list[EncodedPrompt]:
    """At most ``n`` items, evenly spaced over the list (keeps early and late windows)."""
    if len(items) <= n:
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]
