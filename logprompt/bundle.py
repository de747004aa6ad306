"""The model bundle: what export writes and serving loads (ONNX Runtime only, never torch).

A bundle is a directory (or a ``.tar.gz`` of one)::

    manifest.json      BundleManifest: pipeline config, template table, threshold, checksums...
    model.onnx         fp32 graph: input_ids, attention_mask, token_type_ids -> logits,
                       anomaly_probability
    model.int8.onnx    the same graph, weights dynamically quantized to int8 (CPU serving)
    tokenizer.json     the training tokenizer (``tokenizers`` format)

Trust: the manifest carries the sha256 of every other file and a sha256 of its own canonical
content, so :func:`load_bundle` refuses a corrupt, truncated or edited bundle with a
:class:`BundleError` naming the file. Everything is plain JSON or ONNX; nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from logprompt.parsing import TemplateTable
from logprompt.pipeline import PipelineConfig
from logprompt.prompts import EncodedPrompt, PromptEncoder, pad_batch

if TYPE_CHECKING:
    import onnxruntime as ort

    from logprompt.windows import Window

log = structlog.get_logger(__name__)

BUNDLE_FORMAT: Literal["logprompt-bundle"] = "logprompt-bundle"
SCHEMA_VERSION = 1  # bump on any change a loader of the previous version would misread

MANIFEST_FILE = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
MODEL_FILES: dict[str, str] = {"fp32": "model.onnx", "int8": "model.int8.onnx"}

Variant = Literal["fp32", "int8"]
ExecutionProvider = Literal["auto", "cuda", "cpu"]

# The graph's signature, declared once: export builds the graph from it, serving checks the
# loaded session against it. Symbolic names are the dynamic axes.
GRAPH_INPUTS: dict[str, tuple[str, ...]] = {
    "input_ids": ("batch", "sequence"),
    "attention_mask": ("batch", "sequence"),
    "token_type_ids": ("batch", "sequence"),
}
GRAPH_OUTPUTS: dict[str, tuple[str, ...]] = {
    "logits": ("batch", "classes"),  # classes = 2; the "classes" axis is static (not dynamic)
    "anomaly_probability": ("batch",),  # softmax(logits)[:, 1]
}
DYNAMIC_AXES = ("batch", "sequence")

# variant="auto" serves int8 only when export validation found at least this share of
# decisions unchanged by it (validation.int8.unchanged_decisions in the manifest).
INT8_MIN_AGREEMENT = 0.995


class BundleError(Exception):
    """A bundle that cannot be served: missing, corrupt, edited or incompatible.

    ``path`` is the offending file (or the bundle itself), ``reason`` a short code:
    ``not_found``, ``missing_file``, ``invalid_manifest``, ``schema_version``, ``checksum``,
    ``unsafe_archive``, ``model``.
    """

    def __init__(self, path: Path | str, reason: str, detail: str) -> None:
        super().__init__(f"{path}: {reason}: {detail}")
        self.path = Path(path)
        self.reason = reason
        self.detail = detail


# -- the manifest ----------------------------------------------------------------------------------
class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FileEntry(_Frozen):
    sha256: str
    bytes: int


class GraphInfo(_Frozen):
    opset: int
    exporter: str  # "torchscript" (torch.onnx.export dynamo=False) or "dynamo"
    inputs: dict[str, tuple[str, ...]] = Field(default_factory=lambda: dict(GRAPH_INPUTS))
    outputs: dict[str, tuple[str, ...]] = Field(default_factory=lambda: dict(GRAPH_OUTPUTS))
    dynamic_axes: tuple[str, ...] = DYNAMIC_AXES
    input_dtype: str = "int64"
    quantization: dict[str, Any] = Field(default_factory=dict)  # how model.int8.onnx was made


class Verbalizer(_Frozen):
    """Label words mapped to the classes at [MASK]; kept for audit (the graph applies them)."""

    label_words: dict[str, tuple[str, ...]] = Field(default_factory=dict)  # label name -> words
    token_ids: dict[str, tuple[int, ...]] = Field(default_factory=dict)  # label name -> ids
    mask_token_id: int


class TrainingInfo(_Frozen):
    dataset: str
    base_model: str
    split: str = "test"  # held-out split of the headline metrics (threshold set on val)
    label_budget: Any = None
    label_sample: Any = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    train_config: dict[str, Any] = Field(default_factory=dict)
    checkpoint_format: str = ""
    created_at: str = ""


class Fp32Check(_Frozen):
    windows: int
    source: str  # where the validation windows came from
    tolerance: dict[str, float]  # output name -> allowed max abs diff
    max_abs_diff: dict[str, float]  # output name -> measured max abs diff vs PyTorch


class Int8Check(_Frozen):
    windows: int
    source: str
    unchanged_decisions: float  # share of windows whose decision at the threshold is unchanged
    probability_drift_mean: float  # |p_int8 - p_fp32|
    probability_drift_max: float


class ValidationReport(_Frozen):
    fp32: Fp32Check
    int8: Int8Check | None = None


class BundleManifest(_Frozen):
    """Everything serving needs to reproduce training's inputs and decisions exactly."""

    format: Literal["logprompt-bundle"] = BUNDLE_FORMAT
    schema_version: int = SCHEMA_VERSION
    model_version: str  # <dataset>-<UTC timestamp>-<first 12 hex of sha256(model.onnx)>
    created_at: str
    pipeline: PipelineConfig
    templates: TemplateTable
    template_ids: tuple[str, ...]  # table.ids(), stored so a reader can check them
    label_names: tuple[str, ...]  # index = class index in `logits`; 1 = anomaly
    threshold: float  # anomaly when anomaly_probability >= threshold
    verbalizer: Verbalizer
    graph: GraphInfo
    variants: dict[str, str]  # variant -> file name
    training: TrainingInfo
    validation: ValidationReport
    versions: dict[str, str]  # library -> version at export
    files: dict[str, FileEntry]  # every file but manifest.json
    content_sha256: str = ""  # sha256 of the canonical manifest JSON without this field


def canonical_sha256(data: dict[str, Any]) -> str:
    """sha256 of a manifest dict without ``content_sha256``, in canonical JSON form."""
    body = {k: v for k, v in data.items() if k != "content_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(manifest: BundleManifest, directory: Path) -> Path:
    """Write manifest.json with its content hash filled in."""
    data = manifest.model_dump(mode="json")
    data["content_sha256"] = canonical_sha256(data)
    path = directory / MANIFEST_FILE
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    return path


def read_manifest(directory: Path, verify_files: bool = True) -> BundleManifest:
    """Parse and verify a bundle directory's manifest (schema, own hash, file checksums)."""
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise BundleError(path, "missing_file", "no manifest.json: not a logprompt bundle")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(path, "invalid_manifest", f"not valid UTF-8 JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BundleError(path, "invalid_manifest", "top level is not a JSON object")
    # Version first: a newer bundle should say so, not look corrupt.
    if data.get("format") != BUNDLE_FORMAT:
        raise BundleError(path, "invalid_manifest",
                          f"format is {data.get('format')!r}, expected {BUNDLE_FORMAT!r}")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise BundleError(path, "schema_version",
                          f"schema_version {data.get('schema_version')!r}; this loader reads "
                          f"{SCHEMA_VERSION} (re-export the model with this version)")
    expected = data.get("content_sha256")
    actual = canonical_sha256(data)
    if expected != actual:
        raise BundleError(path, "checksum",
                          f"manifest content sha256 {actual} != recorded {expected!r} "
                          "(edited or corrupt)")
    try:
        manifest = BundleManifest.model_validate(data)
    except ValidationError as exc:
        raise BundleError(path, "invalid_manifest", str(exc)) from None
    if tuple(manifest.templates.ids()) != manifest.template_ids:
        raise BundleError(path, "invalid_manifest", "template_ids do not match the templates")
    if verify_files:
        verify_checksums(directory, manifest)
    return manifest


def verify_checksums(directory: Path, manifest: BundleManifest) -> None:
    for name, entry in sorted(manifest.files.items()):
        file = _inside(directory, name)
        if not file.is_file():
            raise BundleError(file, "missing_file", "listed in manifest.json but absent")
        size = file.stat().st_size
        if size != entry.bytes:
            raise BundleError(file, "checksum", f"{size} bytes, manifest says {entry.bytes}")
        digest = file_sha256(file)
        if digest != entry.sha256:
            raise BundleError(file, "checksum", f"sha256 {digest} != manifest {entry.sha256}")
    for name in [TOKENIZER_FILE, *manifest.variants.values()]:
        if name not in manifest.files:
            raise BundleError(directory / MANIFEST_FILE, "invalid_manifest",
                              f"{name} has no checksum in the manifest")


def _inside(directory: Path, name: str) -> Path:
    file = (directory / name).resolve()
    if directory.resolve() not in file.parents:
        raise BundleError(directory / MANIFEST_FILE, "invalid_manifest",
                          f"file name {name!r} points outside the bundle")
    return file


# -- serving ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Session:
    session: ort.InferenceSession
    variant: Variant
    providers: tuple[str, ...]


class BundleScorer:
    """A loaded bundle: the frozen pipeline settings plus an ONNX Runtime session.

    ``score`` returns anomaly probabilities in [0, 1]; a window is anomalous when its
    probability is ``>= threshold``. Create with :func:`load_bundle`.
    """

    def __init__(self, path: Path, manifest: BundleManifest, encoder: PromptEncoder,
                 session: _Session, max_batch: int) -> None:
        self.path = path
        self.manifest = manifest
        self.encoder = encoder
        self._session = session
        self.max_batch = max_batch

    @property
    def pipeline_config(self) -> PipelineConfig:
        return self.manifest.pipeline

    @property
    def table(self) -> TemplateTable:
        return self.manifest.templates

    @property
    def threshold(self) -> float:
        return self.manifest.threshold

    @property
    def model_version(self) -> str:
        return self.manifest.model_version

    @property
    def providers(self) -> tuple[str, ...]:
        """The execution providers the session really uses, in priority order."""
        return self._session.providers

    @property
    def variant(self) -> Variant:
        return self._session.variant

    def score(self, prompts: Sequence[EncodedPrompt]) -> np.ndarray:
        """Anomaly probability (float32, shape ``(len(prompts),)``) of each encoded prompt,
        in order; batches of at most ``max_batch``, each padded to its longest prompt.

        Prompts are batched by length (shortest first) so that a short window is not padded to
        a long neighbour's width: the encoder's cost grows with the padded width, and an fp32
        score does not depend on its batch neighbours."""
        out = np.zeros((len(prompts),), dtype=np.float32)
        by_length = np.argsort([len(p.input_ids) for p in prompts], kind="stable")
        for start in range(0, len(prompts), self.max_batch):
            chunk = by_length[start : start + self.max_batch]
            feed = pad_batch([prompts[i] for i in chunk], self.encoder.pad_id)
            (probability,) = self._session.session.run(["anomaly_probability"], feed)
            out[chunk] = np.asarray(probability, dtype=np.float32).reshape(-1)
        return out

    def score_windows(self, windows: Sequence[Window]) -> np.ndarray:
        """Render each window with the bundle's encoder, then :meth:`score`."""
        return self.score([self.encoder.encode(w.templates, w.template_ids) for w in windows])

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """Boolean anomaly decisions at the bundle's threshold."""
        return np.asarray(probabilities) >= self.threshold


def load_bundle(
    path: Path | str,
    execution_provider: ExecutionProvider = "auto",
    intra_op_threads: int = 0,
    variant: Literal["auto", "fp32", "int8"] = "auto",
    max_batch: int = 64,
    warmup: bool = True,
    allow_spinning: bool = False,
) -> BundleScorer:
    """Verify and load a bundle directory or ``.tar.gz`` for serving.

    * Refuses a missing, corrupt, edited or incompatible bundle with :class:`BundleError`.
    * ``execution_provider``: ``auto`` uses CUDA when ONNX Runtime can, else CPU; ``cuda``
      asks for CUDA and falls back to CPU (logged as a warning); ``cpu`` uses CPU only.
      The providers the session really uses are logged and exposed as ``providers``.
    * ``variant``: ``auto`` is int8 on CPU (when bundled) and fp32 on CUDA (dynamic int8
      kernels are CPU kernels).
    * ``intra_op_threads``: 0 lets ONNX Runtime choose (one per core). ``allow_spinning``:
      ONNX Runtime's threads busy-wait between runs when True; off by default, since on a
      shared or CPU-limited host spinning burns the CPU other threads need (measured: about
      30% fewer windows/s at 2 threads on an oversubscribed machine, docs/export.md).
    * ``variant="auto"`` takes int8 only when the bundle's own validation found at least
      :data:`INT8_MIN_AGREEMENT` of decisions unchanged by it; otherwise fp32, with a warning.
    """
    path = Path(path)
    if not path.exists():
        raise BundleError(path, "not_found", "no such bundle directory or archive")
    if path.is_file():
        with tempfile.TemporaryDirectory(prefix="logprompt-bundle-") as tmp:
            # The session and tokenizer are read into memory, so the extracted copy can go.
            return _load_dir(_extract(path, Path(tmp)), execution_provider, intra_op_threads,
                             variant, max_batch, warmup, allow_spinning, shown_as=path)
    return _load_dir(path, execution_provider, intra_op_threads, variant, max_batch, warmup,
                     allow_spinning, shown_as=path)


def _extract(archive: Path, into: Path) -> Path:
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar.getmembers():
                if not (member.isfile() or member.isdir()):
                    raise BundleError(archive, "unsafe_archive", f"{member.name} is not a file")
            tar.extractall(into, filter="data")  # refuses absolute paths and '..'
    except (tarfile.TarError, OSError) as exc:
        raise BundleError(archive, "unsafe_archive", f"cannot extract ({exc})") from None
    entries = [p for p in into.iterdir()]
    if (into / MANIFEST_FILE).is_file():
        return into
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    raise BundleError(archive, "missing_file", "archive holds no bundle directory")


def _load_dir(directory: Path, execution_provider: ExecutionProvider, intra_op_threads: int,
              variant: Literal["auto", "fp32", "int8"], max_batch: int, warmup: bool,
              allow_spinning: bool, shown_as: Path) -> BundleScorer:
    manifest = read_manifest(directory)
    session = _open_session(directory, manifest, execution_provider, intra_op_threads, variant,
                            allow_spinning)
    try:
        encoder = PromptEncoder.from_file(directory / TOKENIZER_FILE, manifest.pipeline.prompt,
                                          manifest.template_ids)
    except Exception as exc:  # tokenizers raises plain Exception on a bad file
        raise BundleError(directory / TOKENIZER_FILE, "model", f"cannot load ({exc})") from None
    if encoder.mask_id != manifest.verbalizer.mask_token_id:
        raise BundleError(directory / TOKENIZER_FILE, "invalid_manifest",
                          f"[MASK] id {encoder.mask_id} != manifest "
                          f"{manifest.verbalizer.mask_token_id}")
    scorer = BundleScorer(shown_as, manifest, encoder, session, max_batch)
    if warmup:
        scorer.score([encoder.encode(["warm up"], ["00000000"])] * 2)
    log.info("bundle_loaded", path=str(shown_as), model_version=manifest.model_version,
             variant=session.variant, providers=list(session.providers),
             threshold=manifest.threshold)
    return scorer


def _open_session(directory: Path, manifest: BundleManifest,
                  execution_provider: ExecutionProvider, intra_op_threads: int,
                  variant: Literal["auto", "fp32", "int8"], allow_spinning: bool) -> _Session:
    import onnxruntime as ort

    available = ort.get_available_providers()
    want_cuda = execution_provider in ("auto", "cuda")
    cuda_listed = "CUDAExecutionProvider" in available
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(intra_op_threads, 0)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning",
                                     "1" if allow_spinning else "0")
    int8_check = manifest.validation.int8
    int8_trusted = (int8_check is not None
                    and int8_check.unchanged_decisions >= INT8_MIN_AGREEMENT)

    def pick(on_cuda: bool) -> Variant:
        if variant != "auto":
            return variant
        if on_cuda or "int8" not in manifest.variants:
            return "fp32"
        if not int8_trusted:
            log.warning("int8_not_trusted_using_fp32", floor=INT8_MIN_AGREEMENT,
                        unchanged_decisions=None if int8_check is None
                        else int8_check.unchanged_decisions)
            return "fp32"
        return "int8"

    def open_one(chosen: Variant, providers: list[str]) -> tuple[ort.InferenceSession, Path]:
        if chosen not in manifest.variants:
            raise BundleError(directory / MANIFEST_FILE, "missing_file",
                              f"variant {chosen!r} not in this bundle "
                              f"(has {sorted(manifest.variants)})")
        model_path = _inside(directory, manifest.variants[chosen])
        try:
            return ort.InferenceSession(str(model_path), sess_options=options,
                                        providers=providers), model_path
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BundleError(model_path, "model", f"ONNX Runtime cannot load it ({exc})") \
                from None

    chosen = pick(want_cuda and cuda_listed)
    if want_cuda and cuda_listed:
        try:
            session, model_path = open_one(chosen, ["CUDAExecutionProvider",
                                                    "CPUExecutionProvider"])
        except BundleError as exc:
            log.warning("cuda_session_failed", error=exc.detail)
            session = None
        # ONNX Runtime drops CUDA silently (an error in its own log) when its libraries or the
        # device are missing: what counts is what the session reports.
        if session is None or session.get_providers()[0] != "CUDAExecutionProvider":
            log.warning("execution_provider_fallback_cpu", asked=execution_provider,
                        reason="the CUDA provider could not be created (see ONNX Runtime's "
                               "error above)", available=available)
            chosen = pick(False)
            session, model_path = open_one(chosen, ["CPUExecutionProvider"])
    else:
        if execution_provider == "cuda":
            log.warning("execution_provider_fallback_cpu", asked=execution_provider,
                        reason="this ONNX Runtime build has no CUDA provider",
                        available=available)
        session, model_path = open_one(chosen, ["CPUExecutionProvider"])
    used = tuple(session.get_providers())
    _check_signature(model_path, session)
    log.info("onnx_session", model=model_path.name, variant=chosen, providers=list(used),
             intra_op_threads=intra_op_threads or "auto", cores=os.cpu_count())
    return _Session(session, chosen, used)


def _check_signature(model_path: Path, session: ort.InferenceSession) -> None:
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    if set(inputs) != set(GRAPH_INPUTS) or not set(GRAPH_OUTPUTS) <= outputs:
        raise BundleError(model_path, "model",
                          f"graph signature {sorted(inputs)} -> {sorted(outputs)}; expected "
                          f"{sorted(GRAPH_INPUTS)} -> {sorted(GRAPH_OUTPUTS)}")
    for name, node in inputs.items():
        if node.type != "tensor(int64)":
            raise BundleError(model_path, "model", f"input {name} is {node.type}, not int64")


def archive_bundle(directory: Path, archive: Path) -> Path:
    """Pack a bundle directory into ``archive`` (.tar.gz), entries under the directory's name."""
    tmp = archive.with_name(f".{archive.name}.tmp")
    # Level 1: the weights barely compress, and level 9 takes several times longer.
    with tarfile.open(tmp, "w:gz", compresslevel=1) as tar:
        tar.add(directory, arcname=directory.name)
    os.replace(tmp, archive)
    return archive
