#!/usr/bin/env python
"""Rebuild results.csv and intermediate.csv of a study from an exported stages table.

`scripts/gpu/run_study.sh` exports each store's `stages` table (key, kind, status, summary, ...)
as `<store>.stages.csv` into its logs. The tidy result rows are assembled from exactly those
stage summaries (`xstilts.results.result_rows`), so when the store itself could not be brought
back from a machine, this script gives the same rows: numbers computed there, nothing recomputed.
Per-example predictions are not in the table; the analysis then resamples seeds only.

    python scripts/gpu/rebuild_results.py studies/pawsx-scaling.toml \
        --stages-csv logs/pawsx-scaling.stages.csv --out docs/results/pawsx-scaling \
        --set target.lr=1e-4 --only 'e5-small-L3__none__*' ...

The study is planned here (same files and package versions give the same stage keys; set
XSTILTS_DATA_DIR to the data the bundle was made from).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

from xstilts.plan import build_plan, select_plan
from xstilts.results import RESULT_COLUMNS, intermediate_rows, result_rows
from xstilts.study import load_study


class SummaryStore:
    """Just enough of `Store` for `result_rows`: stage folders holding summary.json."""

    def __init__(self, root: Path, stages: pd.DataFrame) -> None:
        self.root = root
        self.done = set(stages.loc[stages["status"] == "done", "key"])
        for key, summary in zip(stages["key"], stages["summary"], strict=True):
            if isinstance(summary, str) and summary.strip():
                folder = root / key
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "summary.json").write_text(summary)

    def stage_dir(self, key: str) -> Path:
        return self.root / key


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study", type=Path)
    p.add_argument("--stages-csv", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--only", action="append", default=None)
    args = p.parse_args(argv)

    study = load_study(args.study, args.overrides)
    plan = select_plan(build_plan(study), args.only)
    stages = pd.read_csv(args.stages_csv)
    rows, inter, missing = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        store = SummaryStore(Path(tmp), stages)
        for run in plan.runs:
            keys = [run.encoder_key, run.target_key, run.evaluate_key]
            if not all(k in store.done for k in keys[1:]):
                missing.append(run.run_id)
                continue
            if run.encoder_key not in store.done:
                raise SystemExit(f"{run.run_id}: encoder stage {run.encoder_key} not in the table")
            rows += result_rows(run, store)  # type: ignore[arg-type]
            inter += intermediate_rows(run, store)  # type: ignore[arg-type]
    args.out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=RESULT_COLUMNS).to_csv(args.out / "results.csv", index=False)
    pd.DataFrame(inter).to_csv(args.out / "intermediate.csv", index=False)
    done = {"runs_in_plan": len(plan.runs), "runs_rebuilt": len(plan.runs) - len(missing)}
    print(json.dumps({**done, "not_finished": missing}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
