"""Loading a study folder as the pipeline writes it: results.csv, an intermediate.csv that
may be empty, and predictions/<run_id>.parquet files without a run_id column."""

from __future__ import annotations

from xstilts.analysis.loaders import load_study
from xstilts.analysis.simulate import simulate_study
from xstilts.analysis.stats import AnalysisConfig, analyze


def test_load_study_round_trip(tmp_path):
    sim = simulate_study(sizes=(1e7, 1e8), n_test=30, n_dev=20, langs=("en", "de"))
    res = sim.results.assign(
        tasks=sim.results["condition"].where(sim.results["category"] != "none")
    )
    res.to_csv(tmp_path / "results.csv", index=False)
    (tmp_path / "intermediate.csv").write_text("\n", encoding="utf-8")
    (tmp_path / "predictions").mkdir()
    for rid, part in sim.predictions.groupby("run_id"):
        part.drop(columns="run_id").to_parquet(tmp_path / "predictions" / f"{rid}.parquet")
    tables = load_study(tmp_path)
    assert tables.intermediate is None
    assert tables.predictions is not None
    assert len(tables.predictions) == len(sim.predictions)
    assert set(tables.predictions["run_id"]) == set(sim.results["run_id"])
    st = analyze(tables.results, tables.predictions, AnalysisConfig(n_boot=50, regression=False))
    assert not st.gaps.empty
