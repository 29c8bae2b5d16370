"""scripts/gpu/make_tiers.py: run lists for a capped GPU call, without the runs already made."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gpu" / "make_tiers.py"
STUDY = REPO / "studies" / "pawsx-scaling.toml"


@pytest.fixture(scope="module")
def m(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script("gpu/make_tiers.py")


def test_first_matching_tier_wins_and_done_runs_are_skipped(m: ModuleType) -> None:
    ids = ["a__x__s1", "b__x__s1", "a__y__s1", "a__x__s2", "c__x__s2"]
    lines = m.make_tiers(ids, {"a__x__s1"}, [["g1", "a__*"], ["g2", "*__x__*"]], "rest")
    assert lines == [("g1", ["a__y__s1", "a__x__s2"]), ("g2", ["b__x__s1", "c__x__s2"])]
    assert m.make_tiers(ids, set(), [["g", "b__*"]], None) == [("g", ["b__x__s1"])]
    assert m.make_tiers(ids, set(), [["g", "z*"]], "all") == [("all", ids)]


def test_script_on_the_study_file(tmp_path: Path, m: ModuleType) -> None:
    ids = m.run_ids(STUDY, [])
    assert len(ids) == len(set(ids)) == 216 and ids[0].endswith("__s1") and ids[-1].endswith("__s3")
    done = tmp_path / "results.csv"
    pd.DataFrame({"run_id": ids[:10], "accuracy": 0.5}).to_csv(done, index=False)
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(STUDY), "--done", str(done),
         "--tier", "scratch", "scratch-*", "--rest", "all"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert out[0].startswith("# 206 of 216 runs (10 done)")
    groups = {line.split()[0]: line.split()[1:] for line in out[1:]}
    assert set(groups) == {"scratch", "all"}
    assert all(r.startswith("scratch-") for r in groups["scratch"])
    listed = groups["scratch"] + groups["all"]
    assert len(listed) == 206 and not set(listed) & set(ids[:10])
