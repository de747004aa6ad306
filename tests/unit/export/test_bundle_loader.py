"""The serving loader (logprompt.bundle): verification, refusal of bad bundles, scoring.

These use a hand-made toy bundle (no torch, no export), so they run in well under a second."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from logprompt.bundle import (
    MANIFEST_FILE,
    MODEL_FILES,
    SCHEMA_VERSION,
    BundleError,
    archive_bundle,
    canonical_sha256,
    load_bundle,
)
from logprompt.prompts import PromptEncoder, pad_batch
from logprompt.windows import Event, Position, Window
from tests.unit.export.toy_bundle import TEMPLATES, make_toy_bundle, toy_probability


def _window(templates: list[str]) -> Window:
    from logprompt.parsing import template_id

    events = tuple(Event("k", template_id(t), t, None, Position("t", 0, i))
                   for i, t in enumerate(templates))
    return Window("k", events, "flush")


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_loads_and_scores(toy_bundle: Path) -> None:
    scorer = load_bundle(toy_bundle, execution_provider="cpu", intra_op_threads=1)
    assert scorer.providers == ("CPUExecutionProvider",)
    assert scorer.variant == "int8"  # auto on CPU
    assert scorer.threshold == 0.5
    assert scorer.model_version.startswith("toy-")
    assert scorer.table.templates == TEMPLATES
    assert scorer.pipeline_config.name == "toy"
    assert isinstance(scorer.encoder, PromptEncoder)
    windows = [_window([TEMPLATES[0]]), _window(list(TEMPLATES) * 3), _window([TEMPLATES[2]])]
    prompts = [scorer.encoder.encode(w.templates, w.template_ids) for w in windows]
    feed = pad_batch(prompts, scorer.encoder.pad_id)
    expected = toy_probability(feed["input_ids"], feed["attention_mask"])
    got = scorer.score(prompts)
    assert got.dtype == np.float32 and got.shape == (3,)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(scorer.score_windows(windows), got, atol=1e-6)
    assert scorer.score([]).shape == (0,)
    assert list(scorer.decide(got)) == [bool(p >= 0.5) for p in got]


def test_batches_larger_than_max_batch_keep_order(toy_bundle: Path) -> None:
    scorer = load_bundle(toy_bundle, execution_provider="cpu", max_batch=4, variant="fp32")
    assert scorer.variant == "fp32"
    windows = [_window([TEMPLATES[i % 3]] * (1 + i % 5)) for i in range(11)]
    one_by_one = np.concatenate([scorer.score_windows([w]) for w in windows])
    np.testing.assert_allclose(scorer.score_windows(windows), one_by_one, atol=1e-6)


def test_batches_are_cut_by_length(toy_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Short prompts are not padded to long neighbours' width (cost grows with the width)."""
    scorer = load_bundle(toy_bundle, execution_provider="cpu", max_batch=3, variant="fp32")
    widths: list[int] = []
    session = scorer._session.session
    real_run = session.run

    def recording_run(names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        widths.append(int(feed["input_ids"].shape[1]))
        return real_run(names, feed)

    monkeypatch.setattr(session, "run", recording_run)
    windows = [_window(list(TEMPLATES) * (4 if i % 2 else 1)) for i in range(6)]
    scores = scorer.score_windows(windows)
    short, long = (len(scorer.encoder.encode(w.templates, w.template_ids).input_ids)
                   for w in windows[:2])
    assert widths == [short, long]  # unsorted, every batch would be padded to the long width
    one_by_one = np.concatenate([scorer.score_windows([w]) for w in windows])
    np.testing.assert_allclose(scores, one_by_one, atol=1e-6)


def test_flipped_byte_in_model_is_refused(toy_bundle: Path) -> None:
    model = toy_bundle / MODEL_FILES["fp32"]
    _flip(model, model.stat().st_size // 2)
    with pytest.raises(BundleError) as err:
        load_bundle(toy_bundle, execution_provider="cpu")
    assert err.value.reason == "checksum"
    assert err.value.path.name == "model.onnx"
    assert "model.onnx" in str(err.value)


@pytest.mark.parametrize("needle", ['"threshold": 0.5', "Receiving block", '"content_sha256": "',
                                    '"schema_version"'])
def test_flipped_byte_in_manifest_is_refused(toy_bundle: Path, needle: str) -> None:
    manifest = toy_bundle / MANIFEST_FILE
    offset = manifest.read_bytes().index(needle.encode()) + len(needle) - 1
    _flip(manifest, offset)
    with pytest.raises(BundleError) as err:
        load_bundle(toy_bundle, execution_provider="cpu")
    assert err.value.path.name == MANIFEST_FILE
    assert err.value.reason in {"checksum", "invalid_manifest", "schema_version"}


def test_every_single_byte_flip_of_the_manifest_is_refused(toy_bundle: Path) -> None:
    """Exhaustive over every 7th byte: no flip slips through verification."""
    from logprompt.bundle import read_manifest

    manifest = toy_bundle / MANIFEST_FILE
    original = manifest.read_bytes()
    for offset in range(0, len(original), 7):
        _flip(manifest, offset)
        with pytest.raises(BundleError):
            read_manifest(toy_bundle, verify_files=False)
        manifest.write_bytes(original)


def _rewrite_manifest(bundle: Path, **changes: object) -> None:
    """Edit fields and re-seal the manifest hash, as a buggy or newer exporter might."""
    path = bundle / MANIFEST_FILE
    data = json.loads(path.read_text())
    data.update(changes)
    data["content_sha256"] = canonical_sha256(data)
    path.write_text(json.dumps(data))


def test_wrong_schema_version_is_refused(toy_bundle: Path) -> None:
    _rewrite_manifest(toy_bundle, schema_version=SCHEMA_VERSION + 1)
    with pytest.raises(BundleError) as err:
        load_bundle(toy_bundle, execution_provider="cpu")
    assert err.value.reason == "schema_version"
    assert f"schema_version {SCHEMA_VERSION + 1}" in str(err.value)


def test_unknown_manifest_field_is_refused(toy_bundle: Path) -> None:
    _rewrite_manifest(toy_bundle, surprise=1)
    with pytest.raises(BundleError) as err:
        load_bundle(toy_bundle, execution_provider="cpu")
    assert err.value.reason == "invalid_manifest"


def test_missing_file_is_refused(toy_bundle: Path) -> None:
    (toy_bundle / "tokenizer.json").unlink()
    with pytest.raises(BundleError) as err:
        load_bundle(toy_bundle, execution_provider="cpu")
    assert err.value.reason == "missing_file"
    assert err.value.path.name == "tokenizer.json"


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError) as err:
        load_bundle(tmp_path / "nothing")
    assert err.value.reason == "not_found"
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError) as err:
        load_bundle(tmp_path / "empty")
    assert err.value.reason == "missing_file"


def test_file_name_escaping_the_bundle_is_refused(toy_bundle: Path) -> None:
    data = json.loads((toy_bundle / MANIFEST_FILE).read_text())
    files = data["files"]
    files["../outside"] = files.pop("tokenizer.json")
    _rewrite_manifest(toy_bundle, files=files)
    with pytest.raises(BundleError) as err:
        load_bundle(toy_bundle, execution_provider="cpu")
    assert "outside the bundle" in str(err.value)


def test_archive_loads(toy_bundle: Path, tmp_path: Path) -> None:
    archive = archive_bundle(toy_bundle, tmp_path / "bundle.tar.gz")
    shutil.rmtree(toy_bundle)
    scorer = load_bundle(archive, execution_provider="cpu")
    assert scorer.score_windows([_window([TEMPLATES[0]])]).shape == (1,)


def test_archive_with_a_link_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        link = tarfile.TarInfo("bundle/manifest.json")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link, io.BytesIO())
    with pytest.raises(BundleError) as err:
        load_bundle(archive)
    assert err.value.reason == "unsafe_archive"


def test_cuda_fallback_is_logged(toy_bundle: Path) -> None:
    with capture_logs() as logs:
        scorer = load_bundle(toy_bundle, execution_provider="cuda")
    events = {entry["event"] for entry in logs}
    if scorer.providers[0] == "CUDAExecutionProvider":
        assert scorer.variant == "fp32"
        pytest.skip("CUDA is usable here: no fallback to observe")
    assert scorer.providers == ("CPUExecutionProvider",)
    assert "execution_provider_fallback_cpu" in events
    loaded = next(e for e in logs if e["event"] == "bundle_loaded")
    assert loaded["providers"] == ["CPUExecutionProvider"]


def test_loader_does_not_import_torch() -> None:
    code = "import sys, logprompt.bundle; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_auto_falls_back_to_int8_on_cpu(toy_bundle: Path) -> None:
    scorer = load_bundle(toy_bundle)  # auto: CUDA if it really works, else CPU with int8
    on_cuda = scorer.providers[0] == "CUDAExecutionProvider"
    assert scorer.variant == ("fp32" if on_cuda else "int8")


def test_auto_keeps_fp32_when_int8_changed_too_many_decisions(tmp_path: Path) -> None:
    bundle = make_toy_bundle(tmp_path / "b", int8_agreement=0.96)
    with capture_logs() as logs:
        scorer = load_bundle(bundle, execution_provider="cpu")
    assert scorer.variant == "fp32"
    assert "int8_not_trusted_using_fp32" in {entry["event"] for entry in logs}
    assert load_bundle(bundle, execution_provider="cpu", variant="int8").variant == "int8"
