"""k8s/components/bundle-init/fetch_bundle.py, run against file:// URLs."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "k8s/components/bundle-init/fetch_bundle.py"
FILES = ("manifest.json", "model.onnx", "model.int8.onnx", "tokenizer.json")


@pytest.fixture(scope="module")
def fetch_bundle() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_bundle", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tarball(path: Path, files: tuple[str, ...], prefix: str = "bundle/") -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name in files:
            data = name.encode()
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("prefix", ["bundle/", ""])
def test_unpacks_and_points_current(fetch_bundle: ModuleType, tmp_path: Path, prefix: str) -> None:
    sha = _tarball(tmp_path / "b.tar.gz", FILES, prefix)
    models = tmp_path / "models"
    target = fetch_bundle.fetch((tmp_path / "b.tar.gz").as_uri(), sha, models)
    current = models / "current"
    assert current.is_symlink() and not Path(current.readlink()).is_absolute()
    assert current.resolve() == target.resolve()
    assert sorted(p.name for p in current.iterdir()) == sorted(FILES)
    # Idempotent: a restarted init container finds the same bundle.
    assert fetch_bundle.fetch((tmp_path / "b.tar.gz").as_uri(), sha, models) == target
    assert sorted(p.name for p in models.iterdir()) == sorted([target.name, "current"])


def test_refuses_wrong_digest(fetch_bundle: ModuleType, tmp_path: Path) -> None:
    _tarball(tmp_path / "b.tar.gz", FILES)
    with pytest.raises(ValueError, match="sha256"):
        fetch_bundle.fetch((tmp_path / "b.tar.gz").as_uri(), "0" * 64, tmp_path / "models")
    assert not (tmp_path / "models" / "current").exists()


def test_refuses_incomplete_bundle(fetch_bundle: ModuleType, tmp_path: Path) -> None:
    sha = _tarball(tmp_path / "b.tar.gz", FILES[:2])
    with pytest.raises(ValueError, match="model.int8.onnx"):
        fetch_bundle.fetch((tmp_path / "b.tar.gz").as_uri(), sha, tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []  # no half-unpacked leftovers
