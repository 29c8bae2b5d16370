"""scripts/probe_encoders.py: the representation measures on known inputs, and a real run on the
tiny encoder and the shared PAWS-X files (no timing, no thresholds on the model's numbers)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest


@pytest.fixture(scope="module")
def probe(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script("probe_encoders.py")


def test_measures_on_known_vectors(probe: ModuleType) -> None:
    same = np.tile([[3.0, 4.0, 0.0]], (5, 1))
    assert probe.mean_cosine(same) == pytest.approx(1.0)
    assert probe.varying_share(same) == pytest.approx(0.0)
    opposite = np.array([[1.0, 0.0], [-1.0, 0.0]])
    assert probe.mean_cosine(opposite) == pytest.approx(-1.0)
    assert probe.varying_share(opposite) == pytest.approx(1.0)  # mean 0: all of it varies
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8))
    y = (x[:, 2] - 0.5 * x[:, 5] > 0).astype(int)
    assert probe.ridge_probe_accuracy(x[:300], y[:300], x[300:], y[300:], 1.0) > 0.95
    noise = rng.integers(0, 2, size=400)
    assert probe.ridge_probe_accuracy(x[:300], noise[:300], x[300:], noise[300:], 1.0) < 0.7


@pytest.mark.slow
@pytest.mark.ci
def test_probe_runs_on_a_real_encoder(
    probe: ModuleType, tiny_encoder: Path, shared_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "probe.csv"
    rc = probe.main(
        [f"a={tiny_encoder}", f"b={tiny_encoder}", "--pawsx", str(shared_data / "pawsx"),
         "--train-file", str(shared_data / "paws-wiki" / "test.tsv"),
         "--train-pairs", "120", "--dev-pairs", "60", "--out", str(out)]
    )  # fmt: skip
    assert rc == 0
    rows = list(csv.DictReader(out.open()))
    assert [(r["encoder"], r["pooling"]) for r in rows] == [
        ("a", "first"), ("a", "mean"), ("b", "first"), ("b", "mean")
    ]  # fmt: skip
    for r in rows:
        assert r["n_dev"] == "60"
        assert -1.0 <= float(r["mean_cosine"]) <= 1.0 and 0.0 <= float(r["varying_share"]) <= 1.0
        assert 0.0 <= float(r["probe_dev_acc"]) <= 1.0
    # the same encoder twice gives the same numbers (deterministic, no dropout)
    assert rows[0] | {"encoder": "b"} == rows[2] and rows[1] | {"encoder": "b"} == rows[3]
