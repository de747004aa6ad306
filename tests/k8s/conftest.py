"""Rendering of k8s/ with a real kustomize, shared by the tests in this folder.

Nothing here needs a cluster, a broker or the network. The tools come from the cache that
k8s/tools/install-*.sh fill (or $KUSTOMIZE / $CHECKOV, or PATH); a test that needs a missing
tool is skipped and says which script installs it.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
KUSTOMIZE_VERSION = "v5.8.1"  # keep in step with k8s/tools/install-kustomize.sh
CHECKOV_VERSION = "3.3.30"  # keep in step with k8s/tools/install-checkov.sh
TOOLS_DIR = Path(
    os.environ.get("LOGPROMPT_TOOLS_DIR")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "logprompt-tools"
)

OVERLAYS = ("cpu", "gpu")
SCALERS = (None, "keda", "hpa")  # at most one: two autoscalers on one Deployment fight
EXTRAS = ("servicemonitor", "bundle-init")
STANDALONE = ("strimzi", "jobs")  # kustomizations applied on their own


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "k8s: renders k8s/ offline; needs no cluster or broker")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.k8s)


@dataclass(frozen=True)
class Combo:
    """One deployable choice: an overlay plus components."""

    overlay: str
    components: tuple[str, ...]

    @property
    def id(self) -> str:
        return "+".join((self.overlay, *self.components))


def all_combos() -> list[Combo]:
    combos = []
    for overlay, scaler in itertools.product(OVERLAYS, SCALERS):
        for n in range(len(EXTRAS) + 1):
            for extras in itertools.combinations(EXTRAS, n):
                components = ((scaler,) if scaler else ()) + extras
                combos.append(Combo(overlay, components))
    return combos


def _find_tool(env: str, cached: Path, name: str) -> str | None:
    for candidate in (os.environ.get(env), cached, shutil.which(name)):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


@pytest.fixture(scope="session")
def kustomize() -> str:
    path = _find_tool("KUSTOMIZE", TOOLS_DIR / f"kustomize-{KUSTOMIZE_VERSION}" / "kustomize", "kustomize")
    if path is None:
        pytest.skip("kustomize not found: run k8s/tools/install-kustomize.sh (or set $KUSTOMIZE)")
    return path


@pytest.fixture(scope="session")
def checkov() -> str:
    path = _find_tool("CHECKOV", TOOLS_DIR / f"checkov-{CHECKOV_VERSION}" / "bin" / "checkov", "checkov")
    if path is None:
        pytest.skip("checkov not found: run k8s/tools/install-checkov.sh (or set $CHECKOV)")
    return path


def _build(kustomize: str, path: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [kustomize, "build", str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    assert out.returncode == 0, f"kustomize build {path} failed:\n{out.stderr}"
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="session")
def build(kustomize: str) -> Callable[[Path], list[dict[str, Any]]]:
    """`kustomize build PATH`, parsed."""
    return lambda path: _build(kustomize, path)


@pytest.fixture(scope="session")
def rendered(kustomize: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """Every combination and every standalone kustomization, rendered once per session.

    A combination is a throwaway kustomization in a temporary folder, as a user would write
    it: kustomize wants relative paths to other kustomizations, so they go up to the repo.
    """
    root = tmp_path_factory.mktemp("kustomize")
    folders: dict[str, Path] = {name: K8S / name for name in STANDALONE}
    for combo in all_combos():
        folder = root / combo.id
        folder.mkdir()
        rel = Path(os.path.relpath(K8S, folder))
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [str(rel / "overlays" / combo.overlay)],
            "components": [str(rel / "components" / c) for c in combo.components],
        }
        (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        folders[combo.id] = folder
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        docs = list(pool.map(lambda folder: _build(kustomize, folder), folders.values()))
    return dict(zip(folders, docs, strict=True))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`combo_id`: one test per overlay + components combination."""
    if "combo_id" in metafunc.fixturenames:
        metafunc.parametrize("combo_id", [c.id for c in all_combos()])
