"""Read a study's output folder (results.csv, intermediate.csv, pretraining.csv,
predictions/<run_id>.parquet, or one predictions.parquet with a run_id column) into the tidy tables
the analysis takes; run_id comes from the file name if absent."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from xstilts.analysis.schema import PREDICTION_COLUMNS

PRETRAINING_NEEDS = ("ladder", "model", "step", "tokens", "eval_loss", "unigram_eval_loss",
                     "device", "seconds")  # fmt: skip
"""The `pretraining.csv` columns the report reads (docs/file-formats.md)."""


@dataclass
class StudyTables:
    """The analysis inputs; `predictions`, `intermediate` and `pretraining` are None when absent
    or empty."""

    results: pd.DataFrame
    predictions: pd.DataFrame | None
    intermediate: pd.DataFrame | None
    pretraining: pd.DataFrame | None = None


def _optional_csv(path: Path) -> pd.DataFrame | None:
    """A CSV that may be missing, empty or header-only: None in those cases."""
    if not path.is_file() or path.stat().st_size <= 1:
        return None
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return None
    return None if frame.empty else frame


def load_predictions(folder: str | Path, run_ids: set[str] | None = None) -> pd.DataFrame | None:
    """Concatenate `<folder>/<run_id>.parquet` files (only `run_ids` if given)."""
    parts = []
    for path in sorted(Path(folder).glob("*.parquet")):
        rid = path.stem
        if run_ids is not None and rid not in run_ids:
            continue
        df = pd.read_parquet(path)
        if "run_id" not in df.columns:
            df.insert(0, "run_id", rid)
        parts.append(df[[c for c in PREDICTION_COLUMNS if c in df.columns]])
    if not parts:
        return None
    return pd.concat(parts, ignore_index=True)


def load_study(out_dir: str | Path) -> StudyTables:
    """Load `results.csv` (required), `predictions/` or `predictions.parquet`,
    `intermediate.csv` and `pretraining.csv` (optional)."""
    out = Path(out_dir)
    results = pd.read_csv(out / "results.csv")
    preds = None
    run_ids = set(results["run_id"].astype(str))
    if (out / "predictions").is_dir():
        preds = load_predictions(out / "predictions", run_ids)
    elif (out / "predictions.parquet").is_file():  # one file for all runs (published results)
        preds = pd.read_parquet(out / "predictions.parquet")
        preds = preds[preds["run_id"].astype(str).isin(run_ids)].reset_index(drop=True)
    pretraining = _optional_csv(out / "pretraining.csv")
    if pretraining is not None:
        missing = [c for c in PRETRAINING_NEEDS if c not in pretraining.columns]
        if missing:
            raise ValueError(f"{out / 'pretraining.csv'}: missing column(s) {', '.join(missing)}")
    return StudyTables(
        results=results,
        predictions=preds,
        intermediate=_optional_csv(out / "intermediate.csv"),
        pretraining=pretraining,
    )
