"""Loading and validating the model bundle, at start and on hot reload.

The loader is ``logprompt.bundle:load_bundle`` unless ``bundle_loader`` names another callable
with the same signature. A bundle is accepted only if it loads and scores a probe prompt to a
finite probability: at start a failure stops the process (:class:`BundleLoadError`); during a
hot reload it is refused and the old bundle keeps serving.

A bundle is data (JSON, an ONNX graph, a tokenizer), never code: nothing here unpickles, and a
bundle directory holding a pickle (by its header bytes or its file name) is refused before
the loader opens it, so a pickled model smuggled into a bundle cannot run at load time.
"""

from __future__ import annotations

import hashlib
import importlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from streamer.exceptions import BundleLoadError
from streamer.scoring import Scorer, ThresholdOverride
from streamer.settings import StreamerSettings

MANIFEST_NAME = "manifest.json"
# Names of the formats that deserialize by running code (pickle, and torch/joblib around it).
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pt", ".pth", ".ckpt")


def is_pickle(path: Path) -> bool:
    """A pickle by name, or by the header every pickle of protocol 2 to 5 starts with."""
    if path.name.lower().endswith(PICKLE_SUFFIXES):
        return True
    try:
        with path.open("rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def refuse_pickles(path: Path) -> None:
    """BundleLoadError when the bundle directory holds a pickle anywhere (archives are checked
    by the loader's manifest: only the listed JSON/ONNX files are read from them)."""
    if not path.is_dir():
        return
    found = sorted(str(f.relative_to(path)) for f in path.rglob("*") if f.is_file() and is_pickle(f))
    if found:
        raise BundleLoadError(f"the bundle at {path} holds pickled files, which are never "
                              f"loaded (a pickle runs code when read): {', '.join(found)}")


def _loader(spec: str) -> Callable[..., Any]:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise BundleLoadError(f"bundle_loader {spec!r} is not 'module:callable'")
    try:
        return cast(Callable[..., Any], getattr(importlib.import_module(module_name), attr))
    except (ImportError, AttributeError) as exc:
        raise BundleLoadError(f"cannot import bundle_loader {spec!r}: {exc}") from exc


def load_scorer(settings: StreamerSettings, path: Path | None = None) -> Scorer:
    """Load, apply the threshold override, and validate; BundleLoadError says why not."""
    path = path or settings.bundle_path
    refuse_pickles(path)
    loader = _loader(settings.bundle_loader)
    kwargs: dict[str, Any] = {"execution_provider": settings.execution_provider,
                              "intra_op_threads": settings.intra_op_threads}
    if settings.bundle_variant is not None:
        kwargs["variant"] = settings.bundle_variant
    try:
        scorer = cast(Scorer, loader(path, **kwargs))
    except Exception as exc:  # noqa: BLE001 - any loader failure means "this bundle is unusable"
        raise BundleLoadError(f"cannot load the model bundle at {path}: "
                              f"{type(exc).__name__}: {exc}") from exc
    if settings.threshold_override is not None:
        scorer = cast(Scorer, ThresholdOverride(scorer, settings.threshold_override))
    validate(scorer, path)
    return scorer


def validate(scorer: Scorer, path: Path) -> None:
    """Score one probe prompt; the result must be one probability in [0, 1]."""
    try:
        table_ids = scorer.table.ids()
        ids = table_ids[:1] or ["00000000"]
        templates = list(scorer.table.templates[:1]) or ["probe"]
        probe = scorer.encoder.encode(templates, ids)
        scores = scorer.score([probe])
    except Exception as exc:  # noqa: BLE001
        raise BundleLoadError(f"the bundle at {path} failed its probe: "
                              f"{type(exc).__name__}: {exc}") from exc
    if len(scores) != 1 or not math.isfinite(float(scores[0])) or not 0 <= scores[0] <= 1:
        raise BundleLoadError(f"the bundle at {path} returned {scores!r} for a probe prompt")
    if not 0 <= scorer.threshold <= 1:
        raise BundleLoadError(f"the bundle at {path} has threshold {scorer.threshold}")


def fingerprint(path: Path) -> str | None:
    """What identifies the bundle at ``path`` now: its resolved directory and the hash of its
    manifest. None when there is no manifest (nothing to load yet)."""
    resolved = path.resolve()
    manifest = resolved / MANIFEST_NAME
    try:
        digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    except OSError:
        return None
    return f"{resolved}:{digest}"
