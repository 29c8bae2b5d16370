"""Collapse detection on planted constant predictors and near-majority runs; rates per
condition and the tables with and without collapsed runs."""

from __future__ import annotations

import pytest

from xstilts.analysis.collapse import (
    CollapseConfig,
    collapse_rate,
    detect_collapse,
    exclude_collapsed,
    with_and_without,
)
from xstilts.analysis.simulate import plant_constant_predictor, simulate_study


@pytest.fixture(scope="module")
def study():
    sim = simulate_study(sizes=(1e7, 1e8), n_test=120, n_dev=120, langs=("en", "de", "ja"))
    sim = plant_constant_predictor(sim, "L6__syn2__s1", value=0)
    sim = plant_constant_predictor(sim, "L3__sem1__s0", value=1)
    return sim


def test_planted_constant_predictors_flagged(study):
    flags = detect_collapse(study.results, study.predictions).set_index("run_id")
    for rid in ("L6__syn2__s1", "L3__sem1__s0"):
        assert flags.loc[rid, "collapsed"]
        assert flags.loc[rid, "constant_predictions"]
        assert flags.loc[rid, "modal_share"] == pytest.approx(1.0)
        assert "modal prediction share 1.000" in flags.loc[rid, "reasons"]
    healthy = flags.drop(index=["L6__syn2__s1", "L3__sem1__s0"])
    assert not healthy["collapsed"].any()
    assert (healthy["reasons"] == "").all()


def test_near_majority_flagged_without_constant_predictions(study):
    res = study.results.copy()
    rid = "L3__sem2__s2"
    sel = (res["run_id"] == rid) & (res["lang"] == "en") & (res["split"] == "dev")
    res.loc[sel, "accuracy"] = res.loc[sel, "majority_rate"] + 0.015
    flags = detect_collapse(res, study.predictions).set_index("run_id")
    assert flags.loc[rid, "near_majority"] and flags.loc[rid, "collapsed"]
    assert not flags.loc[rid, "constant_predictions"]
    assert "within 2 pts" in flags.loc[rid, "reasons"]
    # a wider-than-planted margin is still fine at 1 point
    tight = detect_collapse(res, study.predictions, CollapseConfig(majority_margin=0.01))
    assert not tight.set_index("run_id").loc[rid, "near_majority"]


def test_modal_threshold_configurable(study):
    pred = study.predictions.copy()
    rid = "L6__sem3__s0"
    sel = pred["run_id"] == rid
    idx = pred.index[sel]
    pred.loc[idx, "pred"] = 1
    pred.loc[idx[: int(0.03 * len(idx))], "pred"] = 0  # 97% modal share
    default = detect_collapse(study.results, pred).set_index("run_id")
    loose = detect_collapse(study.results, pred, CollapseConfig(modal_threshold=0.95))
    assert not default.loc[rid, "constant_predictions"]
    assert loose.set_index("run_id").loc[rid, "constant_predictions"]


def test_collapse_rate_per_condition(study):
    flags = detect_collapse(study.results, study.predictions)
    rates = collapse_rate(flags).set_index("condition")
    assert rates.loc["syn2", "n_runs"] == 6  # 2 rungs × 3 seeds
    assert rates.loc["syn2", "n_collapsed"] == 1
    assert rates.loc["syn2", "rate"] == pytest.approx(1 / 6)
    assert rates.loc["none", "rate"] == 0
    assert rates.loc["syn2", "category"] == "syntactic"
    fine = collapse_rate(flags, by=("model", "condition")).set_index(["model", "condition"])
    assert fine.loc[("L6", "syn2"), "rate"] == pytest.approx(1 / 3)


def test_with_and_without(study):
    flags = detect_collapse(study.results, study.predictions)
    kept = exclude_collapsed(study.results, flags)
    assert "L6__syn2__s1" not in set(kept["run_id"])
    assert len(kept) == len(study.results) - 2 * 3 * 2  # 2 runs × 3 langs × 2 splits
    both = with_and_without(study.results, flags).set_index(["model", "condition", "lang"])
    row = both.loc[("L6", "syn2", "de")]
    assert row["n_all"] == 3 and row["n_kept"] == 2
    res = study.results
    sel = (res["model"] == "L6") & (res["condition"] == "syn2") & (res["lang"] == "de")
    sel &= res["split"] == "test"
    expect = res[sel & (res["run_id"] != "L6__syn2__s1")]["accuracy"].mean()
    assert row["mean_kept"] == pytest.approx(expect)
    assert row["delta"] == pytest.approx(expect - res[sel]["accuracy"].mean())
    untouched = both.loc[("L6", "none", "de")]
    assert untouched["delta"] == pytest.approx(0.0)


def test_without_predictions_checks_are_skipped_and_said(study):
    flags = detect_collapse(study.results, None)
    assert flags["modal_share"].isna().all()
    assert flags["reasons"].str.contains("constant-prediction check skipped").all()
    assert not flags["constant_predictions"].any()
