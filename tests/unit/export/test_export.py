"""export_bundle end to end on a tiny trained checkpoint: export, validate, load for serving,
and score real windows the same as PyTorch does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from export.cli import main as cli_main
from export.exceptions import OutputExistsError, ValidationFailedError
from logprompt.bundle import MANIFEST_FILE, BundleError, load_bundle
from logprompt.datasets import default_datasets_root


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint from a 2-step training run on hdfs_2k (real windows, real threshold);
    without the data sets, an untrained model saved in the same format (synthetic windows)."""
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("checkpoint") / "tiny"
    if (default_datasets_root() / "hdfs" / "HDFS_2k.log").exists():
        from training.config import TrainConfig
        from training.train import train

        return train(TrainConfig(dataset="hdfs_2k", output=out, max_steps=2, min_steps=1,
                                 epochs=1, batch_size=8, progress=False, resumable=False,
                                 evaluate_test=False, device="cpu", ensemble=1))
    from logprompt.parsing import TemplateTable
    from logprompt.presets import preset
    from training.model import build_model, default_base_model, save_checkpoint

    model, _ = build_model()
    table = TemplateTable(templates=("Receiving block <*> src: <*> dest: <*>",
                                     "PacketResponder <*> for block <*> terminating"))
    return save_checkpoint(out, model, base_model=default_base_model(), pipeline=preset("hdfs"),
                           table=table, meta={"dataset": "synthetic", "threshold": 0.5})


@pytest.fixture(scope="module")
def bundle(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "tiny-bundle"
    return export_bundle_quietly(tiny_checkpoint, out, archive=True)


def export_bundle_quietly(checkpoint: Path, output: Path, **kwargs: object) -> Path:
    from export.exporter import export_bundle

    return export_bundle(checkpoint, output, validation_windows=64, **kwargs)  # type: ignore[arg-type]


@pytest.mark.slow
def test_bundle_layout_and_manifest(bundle: Path, tiny_checkpoint: Path) -> None:
    names = {p.name for p in bundle.iterdir()}
    assert names == {"manifest.json", "model.onnx", "model.int8.onnx", "tokenizer.json"}
    assert (bundle.parent / "tiny-bundle.tar.gz").is_file()
    assert not [p for p in bundle.parent.iterdir() if p.name.startswith(".")]  # no temp left
    assert bundle.stat().st_mode & 0o777 == 0o755
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    meta = json.loads((tiny_checkpoint / "checkpoint.json").read_text())
    assert manifest["threshold"] == meta["threshold"]
    assert manifest["graph"]["opset"] == 17
    assert manifest["graph"]["inputs"]["input_ids"] == ["batch", "sequence"]
    assert set(manifest["files"]) == names - {"manifest.json"}
    assert manifest["model_version"].startswith(f"{meta['dataset']}-")
    assert manifest["model_version"].endswith(manifest["files"]["model.onnx"]["sha256"][:12])
    assert manifest["pipeline"] == json.loads((tiny_checkpoint / "pipeline.json").read_text())
    fp32 = manifest["validation"]["fp32"]
    assert fp32["max_abs_diff"]["anomaly_probability"] <= 1e-4
    assert 0.0 <= manifest["validation"]["int8"]["unchanged_decisions"] <= 1.0
    assert {"torch", "onnx", "onnxruntime", "transformers", "logprompt"} <= set(
        manifest["versions"])


@pytest.mark.slow
def test_served_scores_match_pytorch(bundle: Path, tiny_checkpoint: Path) -> None:
    from training.model import load_checkpoint
    from training.scoring import score_prompts

    scorer = load_bundle(bundle, execution_provider="cpu", variant="fp32", max_batch=8)
    model, _ = load_checkpoint(tiny_checkpoint)
    from export.validate import validation_set

    data = validation_set(scorer.encoder, scorer.pipeline_config, scorer.table,
                          scorer.manifest.training.dataset, limit=40)
    reference = score_prompts(model, data.prompts, scorer.encoder.pad_id, batch_size=16)
    served = scorer.score(data.prompts)
    assert np.max(np.abs(served - reference)) <= 1e-4
    int8 = load_bundle(bundle, execution_provider="cpu", variant="int8")
    assert int8.variant == "int8"
    assert np.max(np.abs(int8.score(data.prompts) - reference)) <= 0.05


@pytest.mark.slow
def test_archive_loads_the_same(bundle: Path) -> None:
    scorer = load_bundle(bundle.parent / "tiny-bundle.tar.gz", execution_provider="cpu")
    assert scorer.model_version == load_bundle(bundle, execution_provider="cpu").model_version


@pytest.mark.slow
def test_exported_bundle_with_flipped_byte_is_refused(bundle: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(bundle, tmp_path / "copy"))
    model = copy / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 3] ^= 0x80
    model.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.onnx"):
        load_bundle(copy, execution_provider="cpu", variant="fp32")


@pytest.mark.slow
def test_overwrite_needs_force(bundle: Path, tiny_checkpoint: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    before = (bundle / MANIFEST_FILE).read_bytes()
    with pytest.raises(OutputExistsError):
        export_bundle_quietly(tiny_checkpoint, bundle)
    assert cli_main([str(tiny_checkpoint), str(bundle)]) == 1
    assert "--force" in capsys.readouterr().err
    assert (bundle / MANIFEST_FILE).read_bytes() == before


@pytest.mark.slow
def test_failed_validation_names_outputs_and_leaves_nothing(
        tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from export import validate

    monkeypatch.setitem(validate.FP32_TOLERANCE, "logits", -1.0)
    monkeypatch.setitem(validate.FP32_TOLERANCE, "anomaly_probability", -1.0)
    out = tmp_path / "out" / "bundle"
    with pytest.raises(ValidationFailedError) as err:
        export_bundle_quietly(tiny_checkpoint, out, int8=False)
    assert "logits" in str(err.value) and "anomaly_probability" in str(err.value)
    assert set(err.value.differences) == {"logits", "anomaly_probability"}
    assert list(out.parent.iterdir()) == []  # no bundle, no temp dir


@pytest.mark.slow
def test_int8_scope_falls_back_when_decisions_change(
        tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The all-MatMul int8 graph is kept only if it keeps the decisions the loader requires;
    else the exporter quantizes again with the down-projections in fp32."""
    from export import validate

    real = validate.check_int8
    calls: list[float] = []

    def first_one_disagrees(*args: object, **kwargs: object) -> validate.Int8Check:
        check = real(*args, **kwargs)  # type: ignore[arg-type]
        if not calls:
            check = check.model_copy(update={"unchanged_decisions": 0.9})
        calls.append(check.unchanged_decisions)
        return check

    monkeypatch.setattr(validate, "check_int8", first_one_disagrees)
    out = export_bundle_quietly(tiny_checkpoint, tmp_path / "bundle")
    quantization = json.loads((out / MANIFEST_FILE).read_text())["graph"]["quantization"]
    assert [t["scope"] for t in quantization["tried"]] == ["all", "keep_down_projections"]
    assert quantization["scope"] == "keep_down_projections" and quantization["kept_fp32"]
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["validation"]["int8"]["unchanged_decisions"] == calls[-1]


@pytest.mark.slow
def test_int8_scope_all_is_kept_when_it_keeps_the_decisions(bundle: Path) -> None:
    quantization = json.loads((bundle / MANIFEST_FILE).read_text())["graph"]["quantization"]
    first = quantization["tried"][0]
    assert first["scope"] == "all"
    if first["unchanged_decisions"] >= 0.995:
        assert quantization["scope"] == "all" and quantization["kept_fp32"] == []
        assert len(quantization["tried"]) == 1


def test_old_opset_is_refused_before_any_work(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main([str(tmp_path / "no-checkpoint"), str(tmp_path / "out"), "--opset", "13"]) == 1
    assert "opset 13" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_missing_checkpoint_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main([str(tmp_path / "no-checkpoint"), str(tmp_path / "out")]) == 1
    assert "checkpoint.json" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_ensemble_checkpoint_exports_to_one_graph(tmp_path: Path) -> None:
    """An ensemble (members over shared lower layers) is one bundle that serves the members'
    mean probability, the same as PyTorch."""
    import torch

    from export.validate import synthetic_prompts
    from logprompt.parsing import TemplateTable
    from logprompt.presets import preset
    from training.model import assemble_ensemble, build_model, default_base_model, save_checkpoint
    from training.scoring import score_prompts

    members = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        model, _ = build_model()
        with torch.no_grad():
            for p in model.encoder.encoder.layer[4:].parameters():
                p.add_(0.05 * torch.randn_like(p))
        members.append(model.eval())
    ensemble = assemble_ensemble(members, shared_layers=4).eval()
    table = TemplateTable(templates=("Receiving block <*> src: <*> dest: <*>",
                                     "PacketResponder <*> for block <*> terminating"))
    checkpoint = save_checkpoint(tmp_path / "ens", ensemble, base_model=default_base_model(),
                                 pipeline=preset("hdfs"), table=table,
                                 meta={"dataset": "synthetic", "threshold": 0.5})
    bundle = export_bundle_quietly(checkpoint, tmp_path / "bundle", int8=False)
    scorer = load_bundle(bundle, execution_provider="cpu", variant="fp32", max_batch=8)
    prompts = synthetic_prompts(scorer.encoder, scorer.pipeline_config, scorer.table, 24)
    pad = scorer.encoder.pad_id
    reference = score_prompts(ensemble, prompts, pad, batch_size=8)
    mean = np.mean([score_prompts(m, prompts, pad, batch_size=8) for m in members], axis=0)
    np.testing.assert_allclose(reference, mean, atol=1e-5)
    assert np.max(np.abs(scorer.score(prompts) - reference)) <= 1e-4
