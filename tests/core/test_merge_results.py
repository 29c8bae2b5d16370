"""scripts/gpu/merge_results.py: a GPU call's runs added to the published results."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
PUBLISHED = REPO / "docs" / "results" / "pawsx-scaling"


@pytest.fixture(scope="module")
def m(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script("gpu/merge_results.py")


@pytest.fixture(scope="module")
def published() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Ten published runs with predictions, their result and intermediate rows."""
    pred = pd.read_parquet(PUBLISHED / "predictions.parquet")
    runs = sorted(pred["run_id"].unique())[:10]
    res = pd.read_csv(PUBLISHED / "results.csv")
    inter = pd.read_csv(PUBLISHED / "intermediate.csv")
    return (
        res[res["run_id"].isin(runs)].reset_index(drop=True),
        inter[inter["run_id"].isin(runs)].reset_index(drop=True),
        pred[pred["run_id"].isin(runs)].reset_index(drop=True),
    )


def _split(tmp_path: Path, published, first: list[str]) -> tuple[Path, Path]:
    """DEST holds the runs in `first`; CALL (a call's output dir) holds the others."""
    res, inter, pred = published
    dest, call = tmp_path / "dest", tmp_path / "call"
    (call / "predictions").mkdir(parents=True)
    dest.mkdir()
    mine = res["run_id"].isin(first)
    res[mine].to_csv(dest / "results.csv", index=False)
    res[~mine].to_csv(call / "results.csv", index=False)
    inter[inter["run_id"].isin(first)].to_csv(dest / "intermediate.csv", index=False)
    inter[~inter["run_id"].isin(first)].to_csv(call / "intermediate.csv", index=False)
    pred[pred["run_id"].isin(first)].to_parquet(dest / "predictions.parquet", index=False)
    for run, part in pred[~pred["run_id"].isin(first)].groupby("run_id"):
        part.drop(columns="run_id").to_parquet(call / "predictions" / f"{run}.parquet")
    return dest, call


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_merging_a_split_gives_back_the_published_rows(tmp_path: Path, m: ModuleType, published):
    res, inter, pred = published
    runs = sorted(res["run_id"].unique())
    dest, call = _split(tmp_path, published, runs[:4])
    counts = m.merge(dest, call)
    assert counts["runs added"] == 6 and counts["runs now"] == 10
    assert counts["prediction files added"] == 6 and counts["runs with predictions"] == 10
    pd.testing.assert_frame_equal(_sorted(pd.read_csv(dest / "results.csv")), _sorted(res))
    pd.testing.assert_frame_equal(_sorted(pd.read_csv(dest / "intermediate.csv")), _sorted(inter))
    merged = pd.read_parquet(dest / "predictions.parquet")
    assert list(merged.columns) == list(pred.columns)
    pd.testing.assert_frame_equal(_sorted(merged), _sorted(pred), check_dtype=False)


def test_a_run_in_both_is_refused_and_nothing_is_written(tmp_path: Path, m: ModuleType, published):
    res, _, _ = published
    runs = sorted(res["run_id"].unique())
    dest, call = _split(tmp_path, published, runs[:4])
    pd.concat([pd.read_csv(call / "results.csv"), res[res["run_id"] == runs[0]]]).to_csv(
        call / "results.csv", index=False
    )
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    assert m.main([str(dest), str(call)]) == 1
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before
    with pytest.raises(m.MergeError, match=rf"1 run\(s\) already in .*results.csv: {runs[0]}"):
        m.merge(dest, call)


def test_other_columns_and_missing_files_are_named(tmp_path: Path, m: ModuleType, published):
    res, _, _ = published
    dest, call = _split(tmp_path, published, sorted(res["run_id"].unique())[:4])
    pd.read_csv(call / "results.csv").drop(columns="n").to_csv(call / "results.csv", index=False)
    with pytest.raises(m.MergeError, match=r"call/results.csv: columns .* differ from"):
        m.merge(dest, call)
    (call / "results.csv").unlink()
    with pytest.raises(m.MergeError, match=r"call/results.csv: not found"):
        m.merge(dest, call)


def test_intermediate_rows_and_predictions_of_unfinished_runs_are_left_out(
    tmp_path: Path, m: ModuleType, published
):
    res, _, _ = published
    runs = sorted(res["run_id"].unique())
    dest, call = _split(tmp_path, published, runs[:4])
    # the call's last run stopped before its results were collected
    pd.read_csv(call / "results.csv").query("run_id != @runs[-1]").to_csv(
        call / "results.csv", index=False
    )
    counts = m.merge(dest, call)
    assert counts["runs now"] == 9 and counts["prediction files added"] == 5
    assert runs[-1] not in set(pd.read_csv(dest / "intermediate.csv")["run_id"])
    assert runs[-1] not in set(pd.read_parquet(dest / "predictions.parquet")["run_id"])
