"""Loading a study folder as the pipeline writes it: results.csv, an intermediate.csv and a
pretraining.csv that may be empty, and predictions/<run_id>.parquet files without a run_id
column."""

from __future__ import annotations

import pytest

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
    (tmp_path / "pretraining.csv").write_text("ladder,model,step\n", encoding="utf-8")
    tables = load_study(tmp_path)
    assert tables.intermediate is None and tables.pretraining is None  # header only: none
    (tmp_path / "pretraining.csv").write_text("ladder,model,step\ns,m,5\n", encoding="utf-8")
    with pytest.raises(
        ValueError, match=r"pretraining\.csv: missing column\(s\) tokens, eval_loss"
    ):
        load_study(tmp_path)
    header = "ladder,model,step,tokens,loss,eval_loss,lr,seconds,unigram_eval_loss,device"
    (tmp_path / "pretraining.csv").write_text(f"{header}\ns,m,5,80,7.0,,1e-3,2.0,,cpu\n")
    tables = load_study(tmp_path)
    assert tables.pretraining is not None and tables.pretraining["step"].tolist() == [5]
    assert tables.predictions is not None
    assert len(tables.predictions) == len(sim.predictions)
    assert set(tables.predictions["run_id"]) == set(sim.results["run_id"])
    st = analyze(tables.results, tables.predictions, AnalysisConfig(n_boot=50, regression=False))
    assert not st.gaps.empty


def test_one_predictions_file_for_all_runs(tmp_path):
    """Published results keep all predictions in one `predictions.parquet` with a run_id column."""
    import pandas as pd

    from xstilts.analysis.loaders import load_study

    pd.DataFrame({"run_id": ["a", "b"], "lang": ["en", "en"], "split": ["test", "test"],
                  "accuracy": [0.5, 0.6], "n": [1, 1]}).to_csv(tmp_path / "results.csv",
                                                                 index=False)  # fmt: skip
    pd.DataFrame(
        {"run_id": ["a", "b", "zzz"], "lang": ["en"] * 3, "split": ["test"] * 3,
         "example_id": ["1", "1", "1"], "gold": [1, 1, 1], "pred": [1, 0, 1]}
    ).to_parquet(tmp_path / "predictions.parquet")  # fmt: skip
    tables = load_study(tmp_path)
    assert tables.predictions is not None
    assert sorted(tables.predictions["run_id"]) == ["a", "b"]  # runs not in results.csv dropped
