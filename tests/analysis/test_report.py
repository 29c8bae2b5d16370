"""The report on synthetic studies: both files written, self-contained HTML (inline PNGs
only), verdict first, design and caveats present; tiny studies degrade gracefully."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from xstilts.analysis.collapse import CollapseConfig
from xstilts.analysis.report import audit_html, build_report, intermediate_summary
from xstilts.analysis.simulate import plant_constant_predictor, simulate_study
from xstilts.analysis.stats import AnalysisConfig

CFG = AnalysisConfig(n_boot=200)

META = {
    "title": "Synthetic xstilts study",
    "ladders": {"depth": ["L3", "L6", "L9", "L12"], "width": ["wL3", "wL6"]},
    "conditions": {"none": "none", "syn1": "syntactic", "sem1": "semantic"},
    "seeds": [0, 1, 2],
    "languages": ["en", "de", "es", "fr", "ja", "ko", "zh"],
    "hyperparameters": {"lr": 2e-5, "epochs": 2, "batch size": 32},
    "data_sources": ["PAWS-X (Yang et al. 2019)", "UD English EWT"],
    "caveats": [
        "depth truncations of one pretrained model, not separately pretrained sizes",
        "English training set is PAWS-Wiki test (8,000 pairs)",
        "es/fr/ja test labels derived",
        "4-bit weights",
    ],
    "notes <b>raw</b>": "escaped & shown",
}


def two_ladders():
    a = simulate_study(ladder="depth", gap=0.05, gap_slope=0.06, n_test=120, n_dev=80, rng_seed=1)
    b = simulate_study(
        ladder="width",
        sizes=(2e7, 2e8),
        gap=0.03,
        n_test=120,
        n_dev=80,
        rng_seed=2,
        model_prefix="w",
        multitask=True,
    )
    a = plant_constant_predictor(a, "L6__syn2__s1", 0)
    res = pd.concat([a.results, b.results], ignore_index=True)
    pred = pd.concat([a.predictions, b.predictions], ignore_index=True)
    inter = pd.concat([a.intermediate, b.intermediate], ignore_index=True)
    return res, pred, inter


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    res, pred, inter = two_ladders()
    out = tmp_path_factory.mktemp("report")
    paths = build_report(res, pred, inter, META, out, config=CFG)
    return paths, paths.html.read_text(encoding="utf-8"), paths.markdown.read_text("utf-8")


def test_files_written(full_report):
    paths, html_text, _ = full_report
    assert paths.html.is_file() and paths.markdown.is_file()
    assert paths.html.suffix == ".html" and paths.markdown.suffix == ".md"
    assert html_text.startswith("<!DOCTYPE html>")


def test_html_is_self_contained(full_report):
    _, html_text, _ = full_report
    n_images, problems = audit_html(html_text)
    assert problems == []
    assert n_images == 5  # gap, categories, heatmap, task bars, intermediate
    assert "<script" not in html_text.lower()
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", html_text)


def test_verdict_first_then_sections(full_report):
    _, html_text, _ = full_report
    order = [
        "id='verdict'",
        "id='design'",
        "id='gap'",
        "id='categories'",
        "id='heatmap'",
        "id='tasks'",
        "id='collapse'",
        "id='intermediate'",
        "id='caveats'",
    ]
    pos = [html_text.index(k) for k in order]
    assert pos == sorted(pos)
    verdict_box = html_text[pos[0] : pos[1]]
    assert "badge amplifies" in verdict_box  # depth ladder: planted positive slope
    assert "pp per 10× non-embedding parameters" in verdict_box
    assert "Regression check" in verdict_box
    assert "Without collapsed runs" in verdict_box


def test_design_caveats_and_provenance(full_report):
    _, html_text, _ = full_report
    for caveat in META["caveats"]:
        assert caveat in html_text.replace("&#x27;", "'")
    assert "Hyperparameters" in html_text and "batch size" in html_text
    assert "notes &lt;b&gt;raw&lt;/b&gt;" in html_text  # meta keys are escaped
    assert "Conditions in the results not declared in study_meta" in html_text
    assert "L6__syn2__s1" in html_text  # the planted collapsed run is listed
    assert "digest" in html_text and "n_boot" in html_text


def test_markdown_summary(full_report):
    _, _, md = full_report
    lines = md.splitlines()
    assert lines[0] == "# Synthetic xstilts study"
    verdict_at = lines.index("## Verdict")
    assert verdict_at < 5
    assert lines[verdict_at + 2].startswith("- **AMPLIFIES** — depth [avg excl. en, test]")
    assert "## Caveats" in md and "4-bit weights" in md
    assert "| ladder | languages | verdict |" in md


def test_tiny_study_is_graceful(tmp_path):
    sim = simulate_study(sizes=(5e7,), n_seeds=1, n_test=60, n_dev=40, langs=("en", "de"))
    paths = build_report(sim.results, None, None, {}, tmp_path, config=AnalysisConfig(n_boot=100))
    html_text = paths.html.read_text("utf-8")
    md = paths.markdown.read_text("utf-8")
    assert "INCONCLUSIVE" in md
    assert "1 rung(s) with both categories; a slope needs at least 2" in md
    assert "One seed per rung × condition" in md
    assert "No predictions given" in md
    n_images, problems = audit_html(html_text)
    assert problems == [] and n_images == 4
    assert "No intermediate-task metrics given" in html_text


def test_report_without_syntactic_tasks(tmp_path):
    sim = simulate_study(n_syntactic=0, n_test=50, n_dev=50, langs=("en", "ja"), sizes=(1e7, 1e8))
    cfg = AnalysisConfig(n_boot=100, regression=False)
    paths = build_report(sim.results, sim.predictions, sim.intermediate, {}, tmp_path, config=cfg)
    md = paths.markdown.read_text("utf-8")
    assert "no syntactic tasks in this ladder" in md
    assert audit_html(paths.html.read_text("utf-8"))[1] == []


def test_all_runs_collapsed(tmp_path):
    sim = simulate_study(
        sizes=(1e7, 1e8), n_syntactic=1, n_semantic=1, n_seeds=1, n_test=40, n_dev=40, langs=("en",)
    )
    for rid in sim.results["run_id"].unique():
        sim = plant_constant_predictor(sim, rid, 0)
    cfg = AnalysisConfig(n_boot=50, regression=False)
    paths = build_report(
        sim.results,
        sim.predictions,
        None,
        {},
        tmp_path,
        config=cfg,
        collapse_config=CollapseConfig(),
    )
    text = paths.html.read_text("utf-8")
    assert "every run is collapsed" in text


def test_audit_catches_problems():
    bad = (
        "<html><body><img src='x.png'><img src='data:image/png;base64,AAAA'>"
        "<script>1</script><a href='https://example.org'>x</a></body></html>"
    )
    n, problems = audit_html(bad)
    assert n == 2 and len(problems) == 5


def test_intermediate_summary_exact():
    inter = pd.DataFrame(
        {
            "model": ["m"] * 4,
            "condition": ["c"] * 4,
            "task": ["t"] * 4,
            "seed": [0, 1, 0, 1],
            "metric": ["accuracy", "accuracy", "loss", "loss"],
            "value": [0.7, 0.8, 0.4, 0.6],
            "baseline": [0.5, 0.5, 0.5, 0.5],
        }
    )
    s = intermediate_summary(inter).set_index("metric")
    assert s.loc["accuracy", "margin"] == pytest.approx(0.25)
    assert s.loc["accuracy", "beats_baseline"]
    assert s.loc["loss", "lower_is_better"]
    assert s.loc["loss", "margin"] == pytest.approx(0.0)
    assert s.loc["loss", "margin_min"] == pytest.approx(-0.1)
    assert not s.loc["loss", "beats_baseline"]
    assert intermediate_summary(None).empty


def test_a_verdict_that_rests_on_collapsed_runs_is_flagged():
    from xstilts.analysis.report import _collapse_warning

    text = _collapse_warning("amplifies", "inconclusive", 19)
    assert "Not robust to collapse" in text and "inconclusive" in text and "19" in text
    assert _collapse_warning("amplifies", "amplifies", 19) == ""  # survives: no warning
    assert _collapse_warning("amplifies", None, 0) == ""  # nothing collapsed
    assert _collapse_warning("inconclusive", "amplifies", 3) == ""  # already the weakest claim
    assert "not computable" in _collapse_warning("diminishes", None, 2)


def test_report_names_rungs_left_out_of_the_slope(tmp_path):
    sim = simulate_study(sizes=(1e7, 3e7, 1e8), n_test=50, n_dev=50, langs=("en", "de"))
    small = sim.results["model"].iloc[0]
    keep = ~((sim.results["model"] == small) & (sim.results["seed"] > 0))  # one seed left there
    res = sim.results[keep]
    pred = sim.predictions[sim.predictions["run_id"].isin(set(res["run_id"]))]
    paths = build_report(res, pred, None, {}, tmp_path, config=AnalysisConfig(n_boot=100))
    md = paths.markdown.read_text("utf-8")
    assert f"Left out of the slope (incomplete, or at the floor): {small}: fewer than 2 seeds" in md
    rest = ", ".join(m for m in sim.results["model"].unique() if m != small)
    assert f"Regression check (mixed; the slope's rungs ({rest}); " in md
    assert f"Sensitivity check (mixed; all runs ({small}, {rest}), incl. rungs left out of" in md
    assert "| in slope |" in md and "| no: fewer than 2 seeds" in md
    assert "| condition | category | n_runs | n_collapsed | rate |" in md
    assert audit_html(paths.html.read_text("utf-8"))[1] == []


def test_unlearned_runs_sign_and_grouping():
    from xstilts.analysis.sensitivity import unlearned_runs

    inter = pd.DataFrame(
        [  # model, condition, task, seed, metric, value, baseline
            ("L3", "cola", "cola", 1, "matthews", 0.0, 0.0),  # at baseline: not learned
            ("L3", "cola", "cola", 2, "matthews", 0.2, 0.0),
            ("L3", "nli", "mnli", 1, "accuracy", 0.36, 0.36),
            ("L3", "nli", "snli", 1, "accuracy", 0.30, 0.35),
            ("L3", "lm", "lm", 1, "eval_loss", 2.0, 3.0),  # lower is better: learned
            ("L3", "lm", "lm", 2, "eval_loss", 3.5, 3.0),
        ],
        columns=["model", "condition", "task", "seed", "metric", "value", "baseline"],
    )
    got = unlearned_runs(inter)
    assert got.values.tolist() == [
        ["L3", "cola", 1, "cola"],
        ["L3", "lm", 2, "lm"],
        ["L3", "nli", 1, "mnli, snli"],
    ]
    assert unlearned_runs(None).empty


def test_report_gives_the_verdict_without_unlearned_intermediate_runs(tmp_path):
    sim = simulate_study(n_test=80, n_dev=40, langs=("en", "de"), rng_seed=3)
    inter = sim.intermediate.copy()
    syn = sorted(set(sim.results.loc[sim.results["category"] == "syntactic", "condition"]))
    inter.loc[inter["condition"] == syn[0], "value"] = inter.loc[
        inter["condition"] == syn[0], "baseline"
    ]  # that task was never learned, on any seed
    n_runs = sim.results.loc[sim.results["condition"] == syn[0], "run_id"].nunique()
    paths = build_report(sim.results, sim.predictions, inter, {}, tmp_path, config=CFG)
    md = paths.markdown.read_text("utf-8")
    assert (
        f"Without the {n_runs} run(s) of this ladder whose intermediate task was not learned "
        f"(dev metric not above its baseline: {syn[0]} ×{n_runs})"
    ) in md
    line = next(x for x in md.splitlines() if "was not learned" in x)
    assert re.search(r": (amplifies|diminishes|inconclusive), slope [+-]\d", line), line
    assert "4 rungs in the slope" in line  # the task is gone at every rung: all stay complete


def test_pretraining_section_reads_each_rung_against_its_reference(tmp_path):
    """`pretraining=` (pretraining.csv) adds a figure and a table after the intermediate tasks:
    last held-out loss, the unigram reference and the distance below it; a rung pretrained
    before the reference existed shows it as missing."""
    sim = simulate_study(sizes=(5e7, 5e8), n_seeds=2, n_test=60, n_dev=40, langs=("en", "de"))
    rows = [
        ("a", 0, 0, None, 11.0, 7.5), ("a", 10, 1000, 9.0, None, 7.5), ("a", 20, 2000, 7.1, 6.9, 7.5),
        ("b", 0, 0, None, 11.2, None), ("b", 20, 4000, 8.0, 8.1, None),
    ]  # fmt: skip
    pre = pd.DataFrame(
        [
            {"ladder": "scratch", "model": m, "step": s, "tokens": t, "loss": loss,
             "eval_loss": ev, "lr": 1e-3, "seconds": float(s), "unigram_eval_loss": ref,
             "device": "cpu"}
            for m, s, t, loss, ev, ref in rows
        ]
    )  # fmt: skip
    paths = build_report(sim.results, None, None, {}, tmp_path, config=CFG, pretraining=pre)
    html_text = paths.html.read_text("utf-8")
    assert html_text.index("id='intermediate'") < html_text.index("id='pretraining'")
    assert html_text.index("id='pretraining'") < html_text.index("id='caveats'")
    n_images, problems = audit_html(html_text)
    assert problems == [] and n_images == 5  # the tiny study's 4 and the loss curves
    table = summary_rows(paths.markdown.read_text("utf-8"), "## Pretraining")
    assert table["a"][3:8] == ["20", "11", "6.9", "7.5", "0.6"]
    assert table["b"][5:8] == ["8.1", "–", "–"]
    plain = build_report(sim.results, None, None, {}, tmp_path / "plain", config=CFG)
    assert "id='pretraining'" not in plain.html.read_text("utf-8")


def summary_rows(md: str, heading: str) -> dict[str, list[str]]:
    """The cells of the Markdown table under `heading`, keyed by the model column."""
    section = md.split(heading, 1)[1].split("\n## ", 1)[0]
    cells = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| ladder")
    ]
    return {row[1]: row for row in cells}


def _collapses_at_the_top(condition: str = "syn1", rng_seed: int = 5):
    """A constant +3 pp gap, except that `condition` (a syntactic task or the syntactic mix)
    collapses at L9 and L12 (as UD-UPOS, and the mix that holds it, did on the GPU): the
    syntactic mean drops there and the gap seems to grow."""
    sim = simulate_study(
        n_test=300, n_dev=200, langs=("de",), gap=0.03, task_sd=0.002, seed_sd=0.003,
        multitask=condition.startswith("all_"), rng_seed=rng_seed,
    )  # fmt: skip
    top = sim.results[
        sim.results["model"].isin(["L9", "L12"]) & (sim.results["condition"] == condition)
    ]
    for rid in sorted(set(top["run_id"])):
        sim = plant_constant_predictor(sim, rid)
    return sim


def _headline(sim):
    """The analysis config of these tests, the collapse flags and the headline verdict."""
    from xstilts.analysis.collapse import detect_collapse
    from xstilts.analysis.stats import analyze

    cfg = AnalysisConfig(n_boot=300, regression=False)
    flags = detect_collapse(sim.results, sim.predictions)
    return (
        cfg,
        flags,
        analyze(sim.results, sim.predictions, cfg, collapse_flags=flags).headline()[0],
    )


def test_leave_one_task_out_finds_the_task_a_verdict_rests_on():
    from xstilts.analysis.collapse import detect_collapse
    from xstilts.analysis.sensitivity import leave_one_task_out

    sim = _collapses_at_the_top()
    cfg, flags, full = _headline(sim)
    assert full.verdict == "amplifies"  # driven by one task
    left = leave_one_task_out(sim.results, sim.predictions, cfg, flags)
    assert [(t.condition, t.category) for t in left] == [
        ("syn1", "syntactic"), ("syn2", "syntactic"), ("syn3", "syntactic"),
        ("sem1", "semantic"), ("sem2", "semantic"), ("sem3", "semantic"),
    ]  # fmt: skip
    by_task = {
        t.condition: next(v for v in t.stats.verdicts if v.lang == full.lang)
        for t in left
        if t.stats is not None
    }
    assert by_task["syn1"].verdict == "inconclusive"
    assert abs(by_task["syn1"].slope) < 0.02  # the planted truth: no trend
    assert {by_task[c].verdict for c in by_task if c != "syn1"} == {"amplifies"}
    # the control and multi-task conditions are never left out; nor is a category's only task
    only = sim.results[~sim.results["condition"].isin(["syn2", "syn3"])]
    alone = leave_one_task_out(only, None, cfg, detect_collapse(only, None))
    assert [t.condition for t in alone] == ["sem1", "sem2", "sem3"]


def test_multitask_only_compares_the_mixes_alone():
    from xstilts.analysis.collapse import detect_collapse
    from xstilts.analysis.sensitivity import multitask_only, multitask_only_line

    sim = _collapses_at_the_top("all_syntactic")
    cfg, flags, full = _headline(sim)
    assert full.verdict == "inconclusive"  # the single tasks: a constant gap
    mixes, note = multitask_only(sim.results, sim.predictions, cfg, flags)
    assert mixes is not None and note == ""
    k = next(v for v in mixes.verdicts if v.lang == full.lang)
    assert k.verdict == "amplifies"  # the collapsed syntactic mix at the top
    # the gap at a rung is all_semantic minus all_syntactic, nothing else
    res = sim.results[(sim.results["split"] == "test") & (sim.results["lang"] == "de")]
    at = res[res["model"] == k.largest].groupby("condition")["accuracy"].mean()
    assert k.gap_largest == pytest.approx(at["all_semantic"] - at["all_syntactic"])
    line = multitask_only_line(full, mixes, note)
    assert line.startswith("Multi-task conditions alone (mix minus mix): amplifies, slope +")
    assert f"at {k.largest}" in line
    # no syntactic mix, no analysis and no line
    no_mix = sim.results[sim.results["condition"] != "all_syntactic"]
    assert multitask_only(no_mix, None, cfg, detect_collapse(no_mix, None)) == (None, "")
    assert multitask_only_line(full, None, "") == ""


def test_report_gives_the_mixes_alone_only_when_there_are_mixes(tmp_path):
    sim = _collapses_at_the_top("all_syntactic")
    md = build_report(sim.results, sim.predictions, sim.intermediate, META, tmp_path / "a",
                      config=CFG).markdown.read_text("utf-8")  # fmt: skip
    assert "  - Multi-task conditions alone (mix minus mix): amplifies" in md
    section = md.split("### Multi-task conditions alone (avg excl. en)")[1].split("##")[0]
    assert [r.split(" | ")[1] for r in section.splitlines() if r.startswith("| sim")] == [
        "L3", "L6", "L9", "L12"
    ]  # fmt: skip
    single = sim.results[~sim.results["condition"].str.startswith("all_")]
    md = build_report(single, None, None, META, tmp_path / "b", config=CFG).markdown.read_text(
        "utf-8"
    )
    assert "Multi-task conditions alone" not in md


def test_report_says_when_a_verdict_changes_without_one_task(tmp_path):
    sim = _collapses_at_the_top()
    paths = build_report(sim.results, sim.predictions, sim.intermediate, META, tmp_path, config=CFG)
    md = paths.markdown.read_text("utf-8")
    assert (
        "Leaving out one task at a time (6 tasks): the verdict changes without syn1 (inconclusive)"
        in md
    )
    section = md.split("### Leave one task out (avg excl. en)")[1].split("###")[0]
    rows = [r for r in section.splitlines() if r.startswith("| sim depth truncations")]
    assert [r.split(" | ")[1] for r in rows] == [
        "(none)",
        "syn1",
        "syn2",
        "syn3",
        "sem1",
        "sem2",
        "sem3",
    ]
    assert "<h3>Leave one task out</h3>" in paths.html.read_text("utf-8")


def test_report_says_what_the_floor_rule_changes(tmp_path):
    sim = simulate_study(n_test=200, n_dev=200, langs=("de",), gap=0.06, rng_seed=3)
    top = sim.results[sim.results["model"].isin(["L3", "L6"])]
    for rid in sorted(set(top["run_id"])):
        sim = plant_constant_predictor(sim, rid)
    paths = build_report(sim.results, sim.predictions, None, META, tmp_path, config=CFG)
    line = "  - With the floor rule off (complete rungs at the floor enter the slope): amplifies"
    assert line in paths.markdown.read_text("utf-8")
