"""Fixtures of the reliability tests (helpers are in reliability_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_helpers import build_tiny_encoder, run_cli, write_study


@pytest.fixture(scope="session")
def tiny_encoder(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_encoder(shared_data, tmp_path_factory.mktemp("tiny-encoder"))


@pytest.fixture(scope="session")
def baseline(
    shared_data: Path, tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """An uninterrupted run of the tiny study, one process; returns its output dir."""
    root = tmp_path_factory.mktemp("baseline")
    study = write_study(root / "study.toml", root / "runs", shared_data, encoder=tiny_encoder)
    done = run_cli("run", str(study))
    assert done.returncode == 0, done.stdout + done.stderr
    return root / "runs"
