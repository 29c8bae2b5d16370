"""The published GPU results re-create their report: `xstilts report` on the committed files
writes the committed `report.md` again, byte for byte (issue 8: "anyone can re-create the
figures from the committed results file"). Fails when the analysis changes and the published
report was not regenerated with `xstilts report docs/results/pawsx-scaling/study.toml`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xstilts.cli import app

PUBLISHED = Path(__file__).resolve().parents[2] / "docs/results/pawsx-scaling"
FILES = ("study.toml", "results.csv", "intermediate.csv", "pretraining.csv", "predictions.parquet")


@pytest.mark.slow
@pytest.mark.ci
def test_committed_results_recreate_the_published_report(tmp_path: Path) -> None:
    for name in FILES:
        shutil.copy(PUBLISHED / name, tmp_path / name)
    out = CliRunner().invoke(app, ["report", str(tmp_path / "study.toml")])
    assert out.exit_code == 0, out.output
    made = (tmp_path / "report.md").read_text("utf-8")
    published = (PUBLISHED / "report.md").read_text("utf-8")
    assert made == published, (
        "docs/results/pawsx-scaling/report.md is not what `xstilts report` makes from the "
        "committed results: regenerate it with `xstilts report docs/results/pawsx-scaling/study.toml`"
    )
    assert (tmp_path / "report.html").stat().st_size > 100_000  # figures embedded
