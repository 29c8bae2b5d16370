"""Shared pytest fixtures: where the read-only real data lives."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

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


@pytest.fixture(scope="session")
def load_script() -> Callable[[str], ModuleType]:
    """Import a file under scripts/ as a module, once per session:
    `load_script("gpu/make_tiers.py")`."""
    loaded: dict[str, ModuleType] = {}

    def load(rel: str) -> ModuleType:
        if rel not in loaded:
            path = REPO / "scripts" / rel
            name = "script_" + path.stem
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None, path
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # dataclasses in the script look themselves up here
            spec.loader.exec_module(module)
            loaded[rel] = module
        return loaded[rel]

    return load
