#!/usr/bin/env python
"""The target stages of a GPU call's exported stage table (`LOGS/<study>.stages.csv`, written by
run_study.sh), one row each: rung, condition, seed, learning rate, English dev accuracy at the
selected checkpoint and at every evaluation. This is where the learning-rate checks of
`make_tiers.py --check` (target phase only, no result rows) are read:

    python scripts/gpu/target_summaries.py LOGS/pawsx-scaling.stages.csv [--only 'scratch-*'] [--csv OUT]
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
from pathlib import Path

import pandas as pd

LABEL = re.compile(r"^(?P<model>\S+): (?P<condition>\S+) → PAWS-X en \(seed (?P<seed>\d+)\)$")


def target_rows(stages: pd.DataFrame) -> pd.DataFrame:
    """One row per finished target stage, from the `stages` table's label and JSON summary."""
    rows = []
    for rec in stages[(stages["kind"] == "target") & (stages["status"] == "done")].itertuples():
        match = LABEL.match(str(rec.label))
        if match is None:
            raise ValueError(f"target stage {rec.key}: label {rec.label!r} is not understood")
        summary = json.loads(rec.summary) if isinstance(rec.summary, str) and rec.summary else {}
        history = summary.get("training", {}).get("history", [])
        rows.append(
            {
                "model": match["model"],
                "condition": match["condition"],
                "seed": int(match["seed"]),
                "lr": summary.get("lr"),  # absent in stages made before the summary recorded it
                "pooling": summary.get("pooling", "first"),
                "en_dev_accuracy": summary.get("en_dev_accuracy"),
                "selected_step": summary.get("selected_step"),
                "steps": summary.get("training", {}).get("steps"),
                "dev_curve": " ".join(f"{h['metric']:.4f}" for h in history),
                "key": rec.key,
            }
        )
    columns = ["model", "condition", "seed", "lr", "pooling", "en_dev_accuracy", "selected_step",
               "steps", "dev_curve", "key"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns).sort_values(["model", "condition", "seed", "lr"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stages", type=Path, help="<study>.stages.csv of a call's logs")
    parser.add_argument("--only", default="*", help="glob on 'model__condition__sSEED'")
    parser.add_argument("--csv", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    rows = target_rows(pd.read_csv(args.stages))
    run = rows["model"] + "__" + rows["condition"] + "__s" + rows["seed"].astype(str)
    rows = rows[[fnmatch.fnmatchcase(r, args.only) for r in run]]
    if args.csv:
        rows.to_csv(args.csv, index=False)
    rows.drop(columns="key").to_string(sys.stdout, index=False)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
