"""Known-answer tests for the bootstrap statistics, gap, slope, regression and verdicts.
Synthetic ladders with planted gap slopes; hand-made tables for exact values."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from xstilts.analysis.schema import AVG_EXCL_EN, AVG_INCL_EN, validate_results
from xstilts.analysis.simulate import plant_constant_predictor, simulate_study
from xstilts.analysis.stats import (
    AnalysisConfig,
    _ci,
    accuracy_consistency,
    analyze,
    fit_interaction,
)

FAST = AnalysisConfig(n_boot=300, regression=False)


def _row(run_id, model, size, condition, category, seed, lang, acc, split="test", n=100):
    return {
        "run_id": run_id,
        "ladder": "hand",
        "model": model,
        "params_total": size + 1000,
        "params_embedding": 1000,
        "params_non_embedding": size,
        "layers": 2 if model == "small" else 4,
        "condition": condition,
        "category": category,
        "seed": seed,
        "lang": lang,
        "split": split,
        "accuracy": acc,
        "n": n,
        "majority_rate": 0.5,
    }


def hand_table() -> pd.DataFrame:
    """Two rungs (1e6 and 1e8 non-embedding params), none + one syntactic + one semantic
    condition, two seeds, languages en/de/ja. Accuracy = base + offset(lang) + seed term."""
    rows = []
    base = {
        ("small", "none"): 0.60,
        ("small", "syn"): 0.62,
        ("small", "sem"): 0.66,
        ("large", "none"): 0.70,
        ("large", "syn"): 0.70,
        ("large", "sem"): 0.78,
    }
    lang_off = {"en": 0.10, "de": 0.00, "ja": -0.04}
    cats = {"none": "none", "syn": "syntactic", "sem": "semantic"}
    for (model, cond), b in base.items():
        size = 10**6 if model == "small" else 10**8
        for seed, s_off in ((0, -0.01), (1, 0.01)):
            rid = f"{model}-{cond}-{seed}"
            for lang, l_off in lang_off.items():
                acc = round(b + l_off + s_off, 6)
                rows.append(_row(rid, model, size, cond, cats[cond], seed, lang, acc))
                rows.append(_row(rid, model, size, cond, cats[cond], seed, lang, 0.95, "dev"))
    return pd.DataFrame(rows)


def test_exact_means_averages_gains_gap_and_slope():
    st = analyze(hand_table(), None, FAST)
    cells = st.cells.set_index(["model", "condition", "lang"])
    # seed terms cancel: the mean over seeds is the base + language offset
    assert cells.loc[("small", "sem", "en"), "mean"] == pytest.approx(0.76)
    assert cells.loc[("small", "sem", "de"), "mean"] == pytest.approx(0.66)
    # avg incl. en = (0.10 + 0 - 0.04)/3 = +0.02; avg excl. en = (0 - 0.04)/2 = -0.02
    assert cells.loc[("large", "sem", AVG_INCL_EN), "mean"] == pytest.approx(0.80)
    assert cells.loc[("large", "sem", AVG_EXCL_EN), "mean"] == pytest.approx(0.76)
    assert cells.loc[("large", "none", AVG_EXCL_EN), "mean"] == pytest.approx(0.68)
    # the split filter: dev rows (all 0.95, above the 0.5 majority rate) never leak into test numbers
    assert cells["mean"].max() < 0.9
    # gain over none: same rung, same language
    assert cells.loc[("small", "syn", "ja"), "gain"] == pytest.approx(0.02)
    assert cells.loc[("large", "sem", AVG_EXCL_EN), "gain"] == pytest.approx(0.08)
    assert math.isnan(cells.loc[("large", "none", "en"), "gain"])
    # gap = semantic - syntactic: 0.04 at 1e6, 0.08 at 1e8 -> slope 0.02 per decade
    gaps = st.gaps[st.gaps["lang"] == AVG_EXCL_EN].set_index("model")
    assert gaps.loc["small", "gap"] == pytest.approx(0.04)
    assert gaps.loc["large", "gap"] == pytest.approx(0.08)
    slope = st.slopes.set_index("lang").loc[AVG_EXCL_EN]
    assert slope["slope"] == pytest.approx(0.02)
    assert slope["size_column"] == "params_non_embedding"
    # every CI brackets its point estimate
    ok = st.cells.dropna(subset=["ci_low"])
    assert ((ok["ci_low"] <= ok["mean"] + 1e-12) & (ok["mean"] <= ok["ci_high"] + 1e-12)).all()
    # labels are always the explicit average names
    assert {AVG_INCL_EN, AVG_EXCL_EN} <= set(st.labels)


def test_partial_group_is_flagged_in_notes():
    st = analyze(hand_table(), None, FAST)
    assert any("avg European" in n and "averages only de" in n for n in st.notes)


def test_tasks_weighted_equally_not_runs():
    rows = []
    # syntactic: task A one seed at 0.60, task B three seeds at 0.80 -> category mean 0.70
    for cond, seeds, acc in (("synA", [0], 0.60), ("synB", [0, 1, 2], 0.80)):
        for s in seeds:
            rows.append(_row(f"{cond}{s}", "small", 10**6, cond, "syntactic", s, "de", acc))
    rows.append(_row("sem0", "small", 10**6, "semX", "semantic", 0, "de", 0.75))
    st = analyze(pd.DataFrame(rows), None, FAST)
    cat = st.categories.set_index(["category", "lang"])
    assert cat.loc[("syntactic", "de"), "mean"] == pytest.approx(0.70)
    gap = st.gaps.set_index("lang").loc["de", "gap"]
    assert gap == pytest.approx(0.05)


def test_multitask_excluded_from_category_means_unless_flagged():
    rows = [
        _row("a", "m", 10**6, "synA", "syntactic", 0, "de", 0.60),
        _row("b", "m", 10**6, "all_syntactic", "syntactic", 0, "de", 0.90),
        _row("c", "m", 10**6, "semA", "semantic", 0, "de", 0.70),
    ]
    df = pd.DataFrame(rows)
    off = analyze(df, None, FAST)
    on = analyze(df, None, AnalysisConfig(n_boot=300, regression=False, include_multitask=True))
    assert off.gaps.set_index("lang").loc["de", "gap"] == pytest.approx(0.10)
    assert on.gaps.set_index("lang").loc["de", "gap"] == pytest.approx(0.70 - 0.75)
    # the multi-task condition is still reported as its own condition
    assert "all_syntactic" in set(off.cells["condition"])
    assert off.cells.set_index("condition").loc["all_syntactic", "multitask"].all()
    # a `tasks` column joined with "+" marks multi-task conditions too
    df2 = df.assign(condition=df["condition"].replace({"all_syntactic": "combo"}))
    df2["tasks"] = np.where(df2["condition"] == "combo", "pos+ner", df2["condition"])
    st2 = analyze(df2, None, FAST)
    assert st2.gaps.set_index("lang").loc["de", "gap"] == pytest.approx(0.10)


@pytest.fixture(scope="module")
def planted():
    cfg = AnalysisConfig(n_boot=400, regression=False)
    out = {}
    for name, gap, slope in (("pos", 0.05, 0.06), ("neg", 0.08, -0.06), ("neg_gap", -0.08, -0.06)):
        sim = simulate_study(gap=gap, gap_slope=slope, rng_seed=3, n_dev=0)
        out[name] = (sim, analyze(sim.results, sim.predictions, cfg))
    return out


def test_positive_planted_slope_amplifies(planted):
    _, st = planted["pos"]
    v = st.headline()[0]
    assert v.lang == AVG_EXCL_EN and v.split == "test"
    assert v.verdict == "amplifies" and v.gap_trend == "increasing"
    assert v.slope_ci[0] > 0
    assert v.slope_ci[0] <= 0.06 <= v.slope_ci[1]
    assert "AMPLIFIES" in v.text and "pp per 10× non-embedding parameters" in v.text
    assert v.smallest == "L3" and v.largest == "L12"


def test_negative_planted_slope_diminishes(planted):
    _, st = planted["neg"]
    v = st.headline()[0]
    assert v.verdict == "diminishes" and v.gap_trend == "decreasing"
    assert v.slope_ci[1] < 0
    assert v.gap_smallest > v.gap_largest > 0


def test_growing_syntactic_advantage_counts_as_amplifying(planted):
    # gap negative and becoming more negative: |gap| grows, the slope alone is negative
    _, st = planted["neg_gap"]
    v = st.headline()[0]
    assert v.gap_trend == "decreasing"
    assert v.verdict == "amplifies"
    assert v.mean_gap_ci[1] < 0


def test_truth_inside_gap_cis(planted):
    sim, st = planted["pos"]
    g = st.gaps[st.gaps["lang"] == AVG_EXCL_EN].set_index("model")
    inside = [g.loc[m, "ci_low"] <= t <= g.loc[m, "ci_high"] for m, t in sim.truth["gap"].items()]
    assert sum(inside) >= 3


def test_language_group_breakdown_present(planted):
    _, st = planted["pos"]
    labels = {v.lang for v in st.verdicts}
    assert {"en", "avg European (de/es/fr)", "avg distant (ja/ko/zh)"} <= labels
    assert st.verdict("sim depth truncations", "en").ladder == "sim depth truncations"


def test_regression_interaction_matches_bootstrap_slope(planted):
    sim, st = planted["pos"]
    reg = fit_interaction(sim.results, "sim depth truncations", lang=AVG_EXCL_EN)
    assert reg.method in ("mixed", "ols_cluster")
    slope = st.slopes.set_index("lang").loc[AVG_EXCL_EN, "slope"]
    # balanced design: the fixed-effect interaction equals the slope of the gap
    assert reg.coef == pytest.approx(slope, abs=2e-3)
    assert reg.ci_low > 0 and reg.p_value < 0.05
    assert reg.n_runs == 4 * 6 * 3


def test_regression_falls_back_to_ols_with_one_seed():
    sim = simulate_study(n_seeds=1, n_dev=0, n_test=100, langs=("en", "de"), gap_slope=0.05)
    reg = fit_interaction(sim.results, "sim depth truncations", lang="avg excl. en")
    assert reg.method == "ols_cluster"
    assert "mixed model not used" in reg.note
    assert np.isfinite(reg.coef) and np.isfinite(reg.p_value)


def test_regression_none_with_one_rung():
    sim = simulate_study(sizes=(1e8,), n_dev=0, n_test=50, langs=("de",))
    reg = fit_interaction(sim.results, "sim depth truncations")
    assert reg.method == "none" and "2 rungs" in reg.note


def test_pure_noise_is_mostly_inconclusive():
    n_sims, inconclusive, unclear = 40, 0, 0
    for i in range(n_sims):
        sim = simulate_study(
            gap=0.0, gap_slope=0.0, rng_seed=100 + i, n_test=100, n_dev=0, langs=("en", "de")
        )
        v = analyze(sim.results, sim.predictions, AnalysisConfig(n_boot=150, regression=False))
        h = v.headline()[0]
        inconclusive += h.verdict == "inconclusive"
        unclear += h.gap_trend == "unclear"
    assert inconclusive >= 0.9 * n_sims
    assert unclear >= 0.9 * n_sims


def test_bootstrap_ci_coverage_near_nominal():
    # one cell: 3 seeds (seed sd 6 pp) × 100 examples; true mean 0.70 - 0.01 + 0.02 (de)
    truth, hits, n_sims = 0.71, 0, 100
    cfg = AnalysisConfig(n_boot=300, regression=False)
    for i in range(n_sims):
        sim = simulate_study(
            sizes=(1e8,),
            n_syntactic=0,
            n_semantic=0,
            langs=("de",),
            n_test=100,
            n_dev=0,
            seed_sd=0.06,
            rng_seed=1000 + i,
        )
        c = analyze(sim.results, sim.predictions, cfg).cells.iloc[0]
        hits += c["ci_low"] <= truth <= c["ci_high"]
    assert 0.85 <= hits / n_sims <= 0.99


def test_shared_and_independent_resampling_agree_on_points():
    sim = simulate_study(n_test=100, n_dev=0, langs=("en", "de"), rng_seed=5)
    a = analyze(sim.results, sim.predictions, FAST)
    b = analyze(
        sim.results,
        sim.predictions,
        AnalysisConfig(n_boot=300, regression=False, example_resampling="independent"),
    )
    c = analyze(sim.results, None, FAST)
    pd.testing.assert_series_equal(a.gaps["gap"], b.gaps["gap"])
    pd.testing.assert_series_equal(a.gaps["gap"], c.gaps["gap"])
    assert any("binomial" in n for n in c.notes)


def test_seeded_and_reproducible():
    sim = simulate_study(n_test=60, n_dev=0, langs=("de",), rng_seed=2)
    a = analyze(sim.results, sim.predictions, FAST)
    b = analyze(sim.results, sim.predictions, FAST)
    c = analyze(sim.results, sim.predictions, AnalysisConfig(n_boot=300, regression=False, seed=1))
    pd.testing.assert_frame_equal(a.slopes, b.slopes)
    assert not np.allclose(a.slopes["ci_low"], c.slopes["ci_low"])


def test_tiny_study_one_seed_one_rung():
    sim = simulate_study(sizes=(1e8,), n_seeds=1, n_test=80, n_dev=0, langs=("en", "de"))
    st = analyze(sim.results, sim.predictions, FAST)
    v = st.headline()[0]
    assert v.verdict == "inconclusive"
    assert any("rung" in r for r in v.reasons)
    # CIs still exist: from test examples alone
    assert (st.cells["ci_high"] > st.cells["ci_low"]).all()
    assert any("One seed" in n for n in st.notes)


def test_category_without_tasks_is_inconclusive():
    sim = simulate_study(n_syntactic=0, n_test=60, n_dev=0, langs=("de",), gap_slope=0.2)
    v = analyze(sim.results, sim.predictions, FAST).headline()[0]
    assert v.verdict == "inconclusive"
    assert "no syntactic tasks in this ladder" in v.reasons


def test_percentile_ci_matches_numpy_with_nans():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 3, 200))
    a[0, 0, :17] = np.nan
    a[1, 2, :] = np.nan
    lo, hi = _ci(a, 0.9)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        ref_lo = np.nanquantile(a, 0.05, axis=-1)
    np.testing.assert_allclose(lo, ref_lo, equal_nan=True)
    assert np.isnan(hi[1, 2])


def test_validation_errors():
    df = hand_table()
    with pytest.raises(ValueError, match="duplicate"):
        validate_results(pd.concat([df, df.iloc[:1]]))
    with pytest.raises(ValueError, match="lacks columns"):
        validate_results(df.drop(columns="n"))
    with pytest.raises(ValueError, match=r"0\.\.1"):
        validate_results(df.assign(accuracy=1.5))
    with pytest.raises(ValueError, match="split"):
        analyze(df[df["split"] == "dev"], None, FAST)


def test_accuracy_consistency_flags_mismatch():
    sim = simulate_study(n_test=40, n_dev=0, langs=("de",), sizes=(1e8,))
    res = sim.results.copy()
    assert accuracy_consistency(res, sim.predictions)["consistent"].all()
    res.loc[0, "accuracy"] = min(res.loc[0, "accuracy"] + 0.1, 1.0)
    bad = accuracy_consistency(res, sim.predictions)
    assert (~bad["consistent"]).sum() == 1


# ---- incomplete rungs (a partial study): the slope compares the same tasks at every rung
def _drop(sim, keep):
    res = sim.results[sim.results.apply(keep, axis=1)]
    pred = sim.predictions[sim.predictions["run_id"].isin(set(res["run_id"]))]
    return res, pred


def test_rung_missing_a_task_or_seeds_is_left_out_of_the_slope():
    sim = simulate_study(n_dev=0, n_test=100, langs=("en", "de"), gap_slope=0.05, rng_seed=5)
    conds = sorted(set(sim.results.loc[sim.results["category"] == "semantic", "condition"]))
    syn = sorted(set(sim.results.loc[sim.results["category"] == "syntactic", "condition"]))
    first = sim.results["seed"].min()

    def keep(r):  # L3 lacks a semantic task; L6 keeps one seed of a syntactic task
        if r["model"] == "L3" and r["condition"] == conds[0]:
            return False
        return not (r["model"] == "L6" and r["condition"] == syn[0] and r["seed"] != first)

    res, pred = _drop(sim, keep)
    st = analyze(res, pred, FAST)
    v = st.headline()[0]
    assert v.n_rungs == 2 and v.smallest == "L9" and v.largest == "L12"
    assert v.left_out == (f"L3: no {conds[0]}", f"L6: fewer than 2 seeds: {syn[0]} (1 seed)")
    assert "Left out of the slope (incomplete, or at the floor)" in v.text
    g = st.gaps[st.gaps["lang"] == v.lang].set_index("model")
    assert list(g.loc[["L3", "L6", "L9", "L12"], "in_slope"]) == [False, False, True, True]
    assert math.isfinite(g.loc["L3", "gap"])  # still shown per rung
    # the slope is the one the two complete rungs give alone
    alone = analyze(res[res["model"].isin(["L9", "L12"])], pred, FAST).headline()[0]
    assert v.slope == pytest.approx(alone.slope)


def test_regression_check_fits_the_slope_rungs_and_all_runs_as_sensitivity():
    sim = simulate_study(n_dev=0, n_test=100, langs=("en", "de"), gap_slope=0.05, rng_seed=5)
    sem = sorted(set(sim.results.loc[sim.results["category"] == "semantic", "condition"]))
    res, pred = _drop(sim, lambda r: not (r["model"] == "L3" and r["condition"] == sem[0]))
    st = analyze(res, pred, AnalysisConfig(n_boot=50))
    v = st.headline()[0]
    main, sens = st.regressions
    assert (main.scope, main.models) == ("slope rungs", ("L6", "L9", "L12"))
    assert (sens.scope, sens.models) == ("all runs", ("L3", "L6", "L9", "L12"))
    l3 = res[(res["model"] == "L3") & res["category"].isin(["syntactic", "semantic"])]
    assert sens.n_runs == main.n_runs + l3["run_id"].nunique()
    # the check on the slope's rungs is the balanced contrast the verdict's slope measures
    assert main.coef == pytest.approx(v.slope, abs=2e-3)
    alone = fit_interaction(res[res["model"] != "L3"], v.ladder, lang=v.lang)
    assert main.coef == pytest.approx(alone.coef)
    # a complete design fits once, on every rung
    full = analyze(sim.results, sim.predictions, AnalysisConfig(n_boot=50)).regressions
    assert [r.scope for r in full] == ["slope rungs"] and len(full[0].models) == 4


def test_regression_check_without_a_complete_rung_says_so():
    sim = simulate_study(n_dev=0, n_test=50, langs=("de",), sizes=(1e7, 1e8), rng_seed=6)
    reg = fit_interaction(sim.results, "sim depth truncations", models=[])
    assert reg.method == "none" and "no rung in the slope" in reg.note


def test_fewer_than_two_complete_rungs_is_inconclusive():
    sim = simulate_study(n_dev=0, n_test=100, langs=("de",), sizes=(1e7, 1e8), rng_seed=6)
    small = sim.results["model"].iloc[0]
    res, pred = _drop(sim, lambda r: not (r["model"] == small and r["seed"] > 0))  # 1 seed left
    v = analyze(res, pred, FAST).headline()[0]
    assert v.verdict == "inconclusive" and v.n_rungs == 1
    assert any("1 rung(s) in the slope; a slope needs at least 2" in r for r in v.reasons)
    assert v.left_out and v.left_out[0].startswith(f"{small}: fewer than 2 seeds")


def test_single_seed_design_keeps_every_rung():
    # a one-seed study (the demo) compares rungs on example-level CIs: nothing is left out
    sim = simulate_study(n_seeds=1, n_dev=0, n_test=100, langs=("de",), gap_slope=0.05)
    v = analyze(sim.results, sim.predictions, FAST).headline()[0]
    assert v.left_out == () and v.n_rungs == 4


def test_min_seeds_must_be_positive():
    with pytest.raises(ValueError, match="min_seeds"):
        AnalysisConfig(min_seeds=0)


# ---- the floor: a rung where nothing learns the target says nothing about the gap
def _collapse_rungs(sim, models, keep=()):
    """Every run of `models` predicts one class (as the 3- and 6-layer e5 rungs did), except
    the runs of the conditions in `keep`."""
    runs = sim.results[sim.results["model"].isin(models) & ~sim.results["condition"].isin(keep)]
    for rid in sorted(set(runs["run_id"])):
        sim = plant_constant_predictor(sim, rid)
    return sim


def test_rungs_at_the_floor_are_left_out_of_the_slope():
    # a constant gap of +6 pp where the target is learned; at L3/L6 nothing learns it, so every
    # condition scores the majority rate there and the gap is ~0: a spurious upward slope
    sim = simulate_study(n_test=200, n_dev=200, langs=("en", "de"), gap=0.06, rng_seed=3)
    sim = _collapse_rungs(sim, ["L3", "L6"])
    st = analyze(sim.results, sim.predictions, FAST)
    v = st.headline()[0]
    assert (v.n_rungs, v.smallest, v.largest) == (2, "L9", "L12")
    assert [w.split(":")[0] for w in v.left_out] == ["L3", "L6"]
    assert all("at the floor" in w and "(21 of 21 runs collapsed)" in w for w in v.left_out)
    assert "at the floor" in v.text
    assert v.verdict == "inconclusive"
    g = st.gaps[st.gaps["lang"] == v.lang].set_index("model")
    assert abs(g.loc["L3", "gap"]) < 0.02 and g.loc["L12", "gap"] > 0.03
    # the slope is the two learning rungs' alone
    alone = analyze(sim.results[sim.results["model"].isin(["L9", "L12"])], sim.predictions, FAST)
    assert v.slope == pytest.approx(alone.headline()[0].slope)
    # without the rule the floor rungs drive an "amplifies"
    off = analyze(sim.results, sim.predictions, dataclasses.replace(FAST, floor_rule=False))
    assert off.headline()[0].n_rungs == 4 and off.headline()[0].verdict == "amplifies"


def test_a_sensitivity_line_says_why_it_is_inconclusive_when_its_slope_ci_excludes_zero():
    from xstilts.analysis.sensitivity import sensitivity_sentence

    sim = simulate_study(n_test=200, n_dev=200, langs=("en", "de"), gap=0.06, rng_seed=3)
    v = analyze(sim.results, sim.predictions, FAST).headline()[0]
    why = "the gap changes with size but its sign over the ladder is unresolved"
    unresolved = dataclasses.replace(
        v, verdict="inconclusive", slope=-0.03, slope_ci=(-0.07, -0.001), reasons=(why,)
    )
    line = sensitivity_sentence("With X", unresolved)
    assert line.startswith("With X: inconclusive, slope -3.00 pp/decade, CI [-7.00, -0.10]")
    assert line.endswith(f"; inconclusive although the CI excludes 0: {why}")
    # a CI across 0 explains itself; a decided verdict has nothing to explain
    across = dataclasses.replace(unresolved, slope_ci=(-0.07, 0.01))
    assert "although" not in sensitivity_sentence("With X", across)
    decided = dataclasses.replace(unresolved, verdict="diminishes", reasons=())
    assert "although" not in sensitivity_sentence("With X", decided)


def test_the_floor_rule_off_line_shows_what_the_rule_changes():
    from xstilts.analysis.collapse import detect_collapse
    from xstilts.analysis.sensitivity import floor_rule_line, floor_rule_off

    sim = simulate_study(n_test=200, n_dev=200, langs=("en", "de"), gap=0.06, rng_seed=3)
    sim = _collapse_rungs(sim, ["L3", "L6"])
    flags = detect_collapse(sim.results, sim.predictions)
    v = analyze(sim.results, sim.predictions, FAST, collapse_flags=flags).headline()[0]
    off = floor_rule_off(sim.results, sim.predictions, FAST, flags)
    assert off is not None
    line = floor_rule_line(v, off)
    assert line.startswith(
        "With the floor rule off (complete rungs at the floor enter the slope): amplifies, slope +"
    )
    assert line.endswith("(4 rungs in the slope, L3 … L12)")
    # nothing at the floor: the rule changes nothing and there is no line
    plain = simulate_study(n_test=200, n_dev=200, langs=("en", "de"), gap=0.06, rng_seed=3)
    pflags = detect_collapse(plain.results, plain.predictions)
    pv = analyze(plain.results, plain.predictions, FAST, collapse_flags=pflags).headline()[0]
    assert floor_rule_line(pv, floor_rule_off(plain.results, plain.predictions, FAST, pflags)) == ""
    # the rule off already: no second analysis
    assert (
        floor_rule_off(sim.results, None, dataclasses.replace(FAST, floor_rule=False), flags)
        is None
    )


def test_a_rung_where_only_some_conditions_learn_is_not_at_the_floor():
    # the control collapses at L3 but the semantic tasks learn: a real difference, kept
    sim = simulate_study(n_test=100, n_dev=100, langs=("de",), rng_seed=4)
    sem = sorted(set(sim.results.loc[sim.results["category"] == "semantic", "condition"]))
    sim = _collapse_rungs(sim, ["L3"], keep=sem[:1])
    v = analyze(sim.results, sim.predictions, FAST).headline()[0]
    assert v.n_rungs == 4 and v.left_out == ()


def test_floor_needs_the_share_of_learning_runs():
    sim = simulate_study(n_test=100, n_dev=100, langs=("de",), rng_seed=4)
    conds = set(sim.results.loc[sim.results["model"] == "L3", "condition"])
    first = sim.results["seed"].min()
    # one seed of three learns in each L3 condition: below the default half, so at the floor
    collapsed = sim.results[(sim.results["model"] == "L3") & (sim.results["seed"] != first)]
    for rid in sorted(set(collapsed["run_id"])):
        sim = plant_constant_predictor(sim, rid)
    v = analyze(sim.results, sim.predictions, FAST).headline()[0]
    assert v.left_out == (
        f"L3: at the floor: no condition learns the target in at least 50% of its runs "
        f"({2 * len(conds)} of {3 * len(conds)} runs collapsed)",
    )
    lenient = dataclasses.replace(FAST, floor_learned_share=0.3)
    assert analyze(sim.results, sim.predictions, lenient).headline()[0].left_out == ()
    with pytest.raises(ValueError, match="floor_learned_share"):
        AnalysisConfig(floor_learned_share=0)


def test_a_ladder_with_every_rung_at_the_floor_says_so():
    sim = simulate_study(sizes=(1e6, 2e6), n_test=60, n_dev=60, langs=("de",), rng_seed=2)
    sim = _collapse_rungs(sim, sorted(set(sim.results["model"])))
    v = analyze(sim.results, sim.predictions, FAST).headline()[0]
    assert v.verdict == "inconclusive" and v.n_rungs == 0
    assert v.reasons[0].startswith("no rung learns the target: every rung is at the floor")
    # one rung that learns is enough to drop that reason
    part = simulate_study(sizes=(1e6, 2e6), n_test=60, n_dev=60, langs=("de",), rng_seed=2)
    part = _collapse_rungs(part, sorted(set(part.results["model"]))[:1])
    assert not any(
        "every rung" in r
        for r in analyze(part.results, part.predictions, FAST).headline()[0].reasons
    )
