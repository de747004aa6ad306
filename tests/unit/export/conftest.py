from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.export.toy_bundle import make_toy_bundle


@pytest.fixture
def toy_bundle(tmp_path: Path) -> Path:
    return make_toy_bundle(tmp_path / "bundle")
