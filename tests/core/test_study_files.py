"""The study files the project ships load, validate and plan offline: every rung × condition ×
seed is a run, and a rung's own settings reach its stages. The hub study cannot be run here (no
hub access); this is what can be checked of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from xstilts.plan import build_plan
from xstilts.study import load_study

REPO = Path(__file__).resolve().parents[2]
STUDY_FILES = sorted([*REPO.glob("studies/*.toml"), *REPO.glob("examples/*.toml")])


@pytest.mark.parametrize("path", STUDY_FILES, ids=lambda p: p.name)
def test_study_file_plans_offline(path: Path, shared_data: Path, monkeypatch) -> None:
    monkeypatch.setenv("XSTILTS_DATA_DIR", str(shared_data))
    study = load_study(path)
    plan = build_plan(study)
    assert len(plan.runs) == len(study.models) * len(study.conditions) * len(study.study.seeds)
    for run in plan.runs:
        target = plan.stages[run.target_key]
        assert target.spec["rung"] == run.model.name
        assert target.spec["hparams"]["lr"] == study.target_for(run.model.name).lr


def test_hub_study_ladders_and_rates() -> None:
    study = load_study(REPO / "studies" / "pawsx-scaling-hub.toml")
    ladders: dict[str, list[str]] = {}
    for m in study.models:
        assert m.source == "hub" and m.trim_vocab
        ladders.setdefault(m.ladder, []).append(m.name)
    assert ladders == {
        "multilingual-e5 (pretrained sizes)": ["e5-small", "e5-base", "e5-large"],
        "XLM-R (pretrained sizes)": ["xlmr-base", "xlmr-large"],
    }
    assert study.target_for("e5-small").lr == 1e-4 and study.target_for("e5-large").lr == 2e-5
    # the same conditions, seeds and data as the offline study, so the two compare
    offline = load_study(REPO / "studies" / "pawsx-scaling.toml")
    assert [c.name for c in study.conditions] == [c.name for c in offline.conditions]
    assert study.study.seeds == offline.study.seeds
    assert study.target.train_file == offline.target.train_file
    assert study.intermediate == offline.intermediate
