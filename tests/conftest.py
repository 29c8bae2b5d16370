"""Shared pytest fixtures: where the read-only real data lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_root() -> Path:
    """The read-only `shared/` folder beside the checkout (or $XSTILTS_SHARED)."""
    return Path(os.environ.get("XSTILTS_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_root() / "data"
    if not root.is_dir():
        pytest.skip(f"real data folder not found at {root}")
    return root
