"""``export_bundle``: checkpoint directory -> validated, versioned bundle directory.

Order, and why:
1. Refuse an existing output before any heavy work (unless ``force``).
2. Build everything in a temporary directory beside the output (same file system, so the final
   rename is atomic); any failure removes it, so no half bundle is ever visible.
3. Export fp32, check the graph, quantize int8, validate both against PyTorch.
4. Hash every file, then write the manifest (which hashes itself), then rename into place.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import platform
import shutil
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import structlog

from export.exceptions import CheckpointError, ExportError, OutputExistsError
from export.graph import DEFAULT_OPSET, EXPORTER, MIN_OPSET
from logprompt.bundle import (
    INT8_MIN_AGREEMENT,
    MODEL_FILES,
    TOKENIZER_FILE,
    BundleManifest,
    FileEntry,
    GraphInfo,
    TrainingInfo,
    ValidationReport,
    Verbalizer,
    archive_bundle,
    file_sha256,
    write_manifest,
)
from logprompt.windows import Window

log = structlog.get_logger(__name__)

_VERSIONED = ("torch", "transformers", "onnx", "tokenizers", "numpy", "logprompt")


def export_bundle(
    checkpoint: Path | str,
    output: Path | str,
    *,
    int8: bool = True,
    opset: int = DEFAULT_OPSET,
    force: bool = False,
    archive: bool = False,
    windows: Sequence[Window] | None = None,
    validation_windows: int = 256,
    datasets_root: Path | None = None,
    min_int8_agreement: float | None = None,
) -> Path:
    """Export a ``logprompt-checkpoint/1`` directory to a bundle directory at ``output``
    (and ``<output>.tar.gz`` with ``archive``); return the bundle directory.

    Validation uses ``windows`` when given, else the test split of the checkpoint's data set
    when it is available, else synthetic windows (see :func:`export.validate.validation_set`).
    Raises :class:`~export.exceptions.OutputExistsError`, ``CheckpointError`` or
    ``ValidationFailedError``; on any error nothing is left at ``output``."""
    checkpoint, output = Path(checkpoint), Path(output)
    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is not supported; use {MIN_OPSET} or later")
    archive_path = output.with_name(output.name + ".tar.gz")
    for target in (output, archive_path) if archive else (output,):
        if target.exists() and not force:
            raise OutputExistsError(target)
    if not (checkpoint / "checkpoint.json").is_file():
        raise CheckpointError(checkpoint, "no checkpoint.json: not a training checkpoint")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent))
    tmp.chmod(0o755)  # mkdtemp makes it owner-only; serving often runs as another user
    try:
        _build(checkpoint, tmp, int8=int8, opset=opset, windows=windows,
               validation_windows=validation_windows, datasets_root=datasets_root,
               min_int8_agreement=min_int8_agreement)
        _replace(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if archive:
        archive_bundle(output, archive_path)
    log.info("bundle_written", path=str(output), archive=str(archive_path) if archive else None)
    return output


def _build(checkpoint: Path, out: Path, *, int8: bool, opset: int,
           windows: Sequence[Window] | None, validation_windows: int,
           datasets_root: Path | None, min_int8_agreement: float | None) -> None:
    from export import validate
    from export.graph import export_graph
    from export.quantize import INT8_SCOPES, quantize_int8
    from logprompt.prompts import PromptEncoder, pad_batch

    # Imported by name: export depends on the checkpoint contract of training.model at run time
    # (load_checkpoint, load_pipeline), not on its internals or its type checking.
    training_model = importlib.import_module("training.model")
    try:
        model, meta = training_model.load_checkpoint(checkpoint)
        pipeline, table = training_model.load_pipeline(checkpoint)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(checkpoint, f"cannot load ({exc})") from exc
    shutil.copyfile(checkpoint / "tokenizer.json", out / TOKENIZER_FILE)
    encoder = PromptEncoder.from_file(out / TOKENIZER_FILE, pipeline.prompt, table.ids())
    if encoder.mask_id != meta["mask_token_id"]:
        raise CheckpointError(checkpoint, f"tokenizer [MASK] id {encoder.mask_id} != "
                                          f"checkpoint mask_token_id {meta['mask_token_id']}")
    threshold = float(meta["threshold"])

    data = validate.validation_set(encoder, pipeline, table,
                                   meta.get("dataset_source") or meta.get("dataset"), windows,
                                   validation_windows, datasets_root)
    log.info("validation_set", windows=len(data.prompts), source=data.source)
    fp32_path = out / MODEL_FILES["fp32"]
    # Trace on the longest prompts; validation then proves other batch sizes and widths.
    sample = sorted(data.prompts, key=lambda p: len(p.input_ids))[-2:]
    export_graph(model, pad_batch(sample, encoder.pad_id), fp32_path, opset)
    import onnx

    onnx.checker.check_model(str(fp32_path), full_check=True)

    reference = validate.torch_outputs(model, data.prompts, encoder.pad_id)
    fp32 = validate.ort_outputs(fp32_path, data.prompts, encoder.pad_id)
    fp32_check = validate.check_fp32(reference, fp32, data.source)
    log.info("validated_fp32", **fp32_check.max_abs_diff)
    int8_check = None
    quantization: dict[str, Any] = {}
    variants = {"fp32": MODEL_FILES["fp32"]}
    if int8:
        int8_path = out / MODEL_FILES["int8"]
        # The fastest scope whose decisions the serving loader would trust; else the last
        # (most faithful) one, recorded as it is (the loader then serves fp32 by default).
        tried: list[dict[str, Any]] = []
        for scope in INT8_SCOPES:
            kept_fp32 = quantize_int8(fp32_path, int8_path, scope)
            quantized = validate.ort_outputs(int8_path, data.prompts, encoder.pad_id)
            int8_check = validate.check_int8(fp32["anomaly_probability"],
                                             quantized["anomaly_probability"], threshold,
                                             data.source)
            log.info("validated_int8", scope=scope,
                     unchanged_decisions=int8_check.unchanged_decisions,
                     drift_mean=int8_check.probability_drift_mean,
                     drift_max=int8_check.probability_drift_max)
            tried.append({"scope": scope, "unchanged_decisions": int8_check.unchanged_decisions})
            if int8_check.unchanged_decisions >= INT8_MIN_AGREEMENT:
                break
        assert int8_check is not None
        validate.require_int8_agreement(int8_check, min_int8_agreement)
        quantization = {"method": "onnxruntime.quantization.quantize_dynamic",
                        "weight_type": "int8", "per_channel": True, "reduce_range": True,
                        "op_types": ["MatMul"], "scope": tried[-1]["scope"],
                        "kept_fp32": kept_fp32, "tried": tried}
        variants["int8"] = MODEL_FILES["int8"]

    files = {
        p.name: FileEntry(sha256=file_sha256(p), bytes=p.stat().st_size)
        for p in sorted(out.iterdir()) if p.is_file()
    }
    now = dt.datetime.now(dt.UTC)
    dataset = str(meta.get("dataset") or "model")
    spec = meta.get("model", {})
    label_names = tuple(meta.get("label_names", ("normal", "anomaly")))
    train_config = meta.get("train_config", {}) or {}
    manifest = BundleManifest(
        model_version=f"{dataset}-{now:%Y%m%dT%H%M%SZ}-{files[MODEL_FILES['fp32']].sha256[:12]}",
        created_at=now.isoformat(timespec="seconds"),
        pipeline=pipeline,
        templates=table,
        template_ids=tuple(table.ids()),
        label_names=label_names,
        threshold=threshold,
        verbalizer=Verbalizer(
            label_words={k: tuple(v) for k, v in meta.get("verbalizer", {}).items()},
            token_ids={label_names[1]: tuple(spec.get("anomaly_word_ids", ())),
                       label_names[0]: tuple(spec.get("normal_word_ids", ()))},
            mask_token_id=int(meta["mask_token_id"]),
        ),
        graph=GraphInfo(opset=opset, exporter=EXPORTER, quantization=quantization),
        variants=variants,
        training=TrainingInfo(
            dataset=dataset,
            base_model=str(meta.get("base_model", "")),
            split=_headline_split(meta.get("metrics", {}) or {}),
            label_budget=meta.get("label_budget"),
            label_sample=meta.get("label_sample"),
            metrics=meta.get("metrics", {}),
            train_config=train_config,
            checkpoint_format=str(meta.get("format", "")),
            created_at=str(meta.get("created_at", "")),
        ),
        validation=ValidationReport(fp32=fp32_check, int8=int8_check),
        versions=_versions(),
        files=files,
    )
    write_manifest(manifest, out)
    log.info("manifest_written", model_version=manifest.model_version)


def _headline_split(metrics: dict[str, Any]) -> str:
    """The held-out split of the chronological protocol (logprompt.datasets) whose metrics
    are the headline: test when training scored it, else val (where the threshold was set)."""
    return "test" if "test" in metrics else "val"


def _versions() -> dict[str, str]:
    import onnxruntime

    # onnxruntime ships as onnxruntime or onnxruntime-gpu: ask the module, not the dist name.
    out = {"python": platform.python_version(), "onnxruntime": onnxruntime.__version__}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _replace(tmp: Path, output: Path) -> None:
    """Move the finished bundle into place; an old one (``force``) goes only after."""
    old = None
    if output.exists() or output.is_symlink():
        old = output.with_name(f".{output.name}.old-{os.getpid()}")
        os.replace(output, old)
    os.replace(tmp, output)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()

