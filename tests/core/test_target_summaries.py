"""scripts/gpu/target_summaries.py: the target stages of a GPU call's exported stage table."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from xstilts.plan import build_plan
from xstilts.study import load_study

REPO = Path(__file__).resolve().parents[2]
CALL3 = REPO / "docs/results/pawsx-scaling/gpu-call-3/logs/pawsx-scaling.stages.csv"


@pytest.fixture(scope="module")
def m(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script("gpu/target_summaries.py")


def test_rows_of_a_published_call(m: ModuleType) -> None:
    stages = pd.read_csv(CALL3)
    rows = m.target_rows(stages)
    finished = stages[(stages["kind"] == "target") & (stages["status"] == "done")]
    assert len(rows) == len(finished) > 0
    one = rows[(rows["model"] == "scratch-1m") & (rows["condition"] == "none")].iloc[0]
    summary = json.loads(finished.set_index("key").loc[one["key"], "summary"])
    assert one["seed"] == 1 and one["en_dev_accuracy"] == summary["en_dev_accuracy"]
    assert len(one["dev_curve"].split()) == len(summary["training"]["history"])


def test_labels_the_planner_writes_are_understood(m: ModuleType) -> None:
    plan = build_plan(load_study(REPO / "studies/pawsx-scaling.toml"))
    targets = [s for s in plan.stages.values() if s.kind == "target"]
    summary = json.dumps({"lr": 3e-4, "en_dev_accuracy": 0.61, "selected_step": 250,
                          "training": {"steps": 750, "history": [{"metric": 0.6}]}})  # fmt: skip
    record = {"kind": "target", "status": "done", "summary": summary}
    stages = pd.DataFrame([{"key": s.key, "label": s.label, **record} for s in targets])
    rows = m.target_rows(stages)
    assert len(rows) == len(targets) and set(rows["lr"]) == {3e-4}
    assert set(rows["model"]) == {r.name for r in plan.study.models}
    bad = stages.head(1).assign(label="something else")
    with pytest.raises(ValueError, match="is not understood"):
        m.target_rows(bad)
