#!/usr/bin/env python
"""Merge what a GPU call brought back into the published results of a study.

A call of `scripts/gpu/run_study.sh` returns `runs/<study>/results.csv`, `intermediate.csv` and
`predictions/<run_id>.parquet` (in results.tgz / predictions_N.tgz). This adds those runs to the
published `results.csv`, `intermediate.csv` and `predictions.parquet` of DEST:

    python scripts/gpu/merge_results.py docs/results/pawsx-scaling CALL/runs/pawsx-scaling

and refuses, naming the file and the runs and writing nothing, when a run is in both (a call's
store reused by the next call holds the earlier call's runs too: merge the last call's files
once), when the columns differ, or when a prediction file lacks a published column.
Intermediate rows and predictions are kept only for the runs in the call's results.csv (a run
stopped after its intermediate stage or its evaluation is not a result). `predictions.parquet`
is written with zstd level 19: every GPU call carries the working tree, and with it this file,
within 64 MiB.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


class MergeError(ValueError):
    pass


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise MergeError(f"{path}: not found")
    return pd.read_csv(path)


def _same_columns(old: pd.DataFrame, new: pd.DataFrame, path: Path, old_path: Path) -> None:
    if list(old.columns) != list(new.columns):
        raise MergeError(
            f"{path}: columns {list(new.columns)} differ from {old_path}'s {list(old.columns)}"
        )


def merge(dest: Path, call: Path) -> dict[str, int]:
    """Merge `call` (a study's output dir from a GPU call) into `dest`; returns the counts."""
    res_path, new_res_path = dest / "results.csv", call / "results.csv"
    res, new_res = _read_csv(res_path), _read_csv(new_res_path)
    _same_columns(res, new_res, new_res_path, res_path)
    new_runs = set(new_res["run_id"].astype(str))
    both = sorted(new_runs & set(res["run_id"].astype(str)))
    if both:
        raise MergeError(
            f"{new_res_path}: {len(both)} run(s) already in {res_path}: {', '.join(both[:5])}"
            + (" …" if len(both) > 5 else "")
        )
    inter_path, new_inter_path = dest / "intermediate.csv", call / "intermediate.csv"
    inter = _read_csv(inter_path)
    new_inter = _read_csv(new_inter_path) if new_inter_path.is_file() else inter.iloc[:0]
    _same_columns(inter, new_inter, new_inter_path, inter_path)
    new_inter = new_inter[new_inter["run_id"].astype(str).isin(new_runs)]

    pred_path = dest / "predictions.parquet"
    pred = pd.read_parquet(pred_path) if pred_path.is_file() else None
    parts = []
    for f in sorted((call / "predictions").glob("*.parquet")):
        if f.stem not in new_runs:
            continue  # stopped after its evaluation wrote predictions but before its results
        part = pd.read_parquet(f)
        part["run_id"] = f.stem
        if pred is not None:
            missing = [c for c in pred.columns if c not in part.columns]
            if missing:
                raise MergeError(f"{f}: no column(s) {missing} (as in {pred_path})")
            part = part[list(pred.columns)]
        parts.append(part)
    out_res = pd.concat([res, new_res], ignore_index=True)
    out_inter = pd.concat([inter, new_inter], ignore_index=True)
    out_res.to_csv(res_path, index=False)
    out_inter.to_csv(inter_path, index=False)
    n_pred_runs = 0
    if parts or pred is not None:
        frames = ([pred] if pred is not None else []) + parts
        out_pred = pd.concat(frames, ignore_index=True)
        out_pred.to_parquet(pred_path, index=False, compression="zstd", compression_level=19)
        n_pred_runs = int(out_pred["run_id"].nunique())
    return {
        "runs added": len(new_runs),
        "runs now": int(out_res["run_id"].nunique()),
        "intermediate rows added": len(new_inter),
        "prediction files added": len(parts),
        "runs with predictions": n_pred_runs,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dest", type=Path, help="the published results folder")
    ap.add_argument("call", type=Path, help="the study's output dir as a GPU call returned it")
    args = ap.parse_args(argv)
    try:
        counts = merge(args.dest, args.call)
    except MergeError as exc:
        print(f"not merged: {exc}", file=sys.stderr)
        return 1
    print("; ".join(f"{k}: {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
