"""Shared pytest fixtures: where the read-only real data lives."""

from __future__ import annotations

import os
from collections.abc import Iterator
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


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Caches that outlive a run (bundles, the tokenized scratch corpus) go to a directory of
    this test session, not the user's ~/.cache."""
    before = os.environ.get("XSTILTS_CACHE_DIR")
    os.environ["XSTILTS_CACHE_DIR"] = str(tmp_path_factory.mktemp("xstilts-cache"))
    yield
    if before is None:
        os.environ.pop("XSTILTS_CACHE_DIR", None)
    else:
        os.environ["XSTILTS_CACHE_DIR"] = before
