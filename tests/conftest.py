"""Shared test helpers: where the data sets are, and a skip when they are absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from logprompt.datasets import default_datasets_root


@pytest.fixture(scope="session")
def datasets_root() -> Path:
    root = default_datasets_root()
    if not (root / "hdfs").exists():
        pytest.skip(f"Loghub data sets not found at {root} (set LOGPROMPT_DATASETS)")
    return root
