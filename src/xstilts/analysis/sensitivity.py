"""Sensitivity analyses of the verdict: the analysis again without some runs (collapsed ones,
those whose intermediate task was not learned, each task in turn), the multi-task mixes
compared alone, and the sentences and tables the report gives them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xstilts.analysis.collapse import exclude_runs
from xstilts.analysis.schema import lower_is_better, multitask_map, validate_intermediate
from xstilts.analysis.stats import (
    AnalysisConfig,
    LadderVerdict,
    StudyStats,
    analyze,
    fmt_ci,
    fmt_pp,
)


def unlearned_runs(intermediate: pd.DataFrame | None) -> pd.DataFrame:
    """The runs (model, condition, seed) with an intermediate task whose final dev metric did
    not beat its majority/chance baseline, and which task(s): those runs' condition did not
    teach what it names (e.g. CoLA at MCC 0), so the report also gives the verdict without them."""
    cols = ["model", "condition", "seed", "tasks"]
    if intermediate is None or intermediate.empty:
        return pd.DataFrame(columns=cols)
    d = validate_intermediate(intermediate)
    margin = np.where(lower_is_better(d["metric"]), -1.0, 1.0) * (d["value"] - d["baseline"])
    bad = d[(margin <= 0).to_numpy()]
    if bad.empty:
        return pd.DataFrame(columns=cols)
    out = bad.groupby(["model", "condition", "seed"], sort=True)["task"].agg(
        lambda t: ", ".join(sorted(set(t)))
    )
    return out.rename("tasks").reset_index()[cols]


def without_runs(
    res: pd.DataFrame,
    pred: pd.DataFrame | None,
    drop: set[str],
    cfg: AnalysisConfig,
    what: str,
    flags: pd.DataFrame,
) -> tuple[StudyStats | None, str]:
    """The analysis of `res` without the runs in `drop` (no regression check), or why none."""
    kept = exclude_runs(res, drop)
    if kept.empty:
        return None, f"every run is {what}; nothing left to analyse"
    kept_pred = exclude_runs(pred, drop) if pred is not None else None
    kept_flags = exclude_runs(flags, drop)
    try:
        return analyze(
            kept, kept_pred, dataclasses.replace(cfg, regression=False), collapse_flags=kept_flags
        ), ""
    except ValueError as exc:
        return None, f"analysis without {what} runs failed: {exc}"


def verdict_or_none(stats: StudyStats, ladder: str, lang: str) -> LadderVerdict | None:
    """`StudyStats.verdict`, or None where that analysis has no such ladder × label."""
    try:
        return stats.verdict(ladder, lang)
    except KeyError:
        return None


LEAVE_ONE_OUT_NOTE = (
    "Each row repeats the analysis without one task's runs at every rung (no regression "
    "check; multi-task conditions and the control stay): a verdict or slope that moves when "
    "one task is left out rests on that task. The floor and completeness rules are applied "
    "anew, so a rung can enter or leave the slope."
)


@dataclass(frozen=True)
class TaskLeftOut:
    """The analysis without one single-task condition (`leave_one_task_out`)."""

    condition: str
    category: str
    ladders: tuple[str, ...]
    """The ladders it is left out of: those with runs of it and another task of its category."""
    stats: StudyStats | None
    note: str
    """Why `stats` is None ("" otherwise)."""


def leave_one_task_out(
    res: pd.DataFrame, pred: pd.DataFrame | None, cfg: AnalysisConfig, flags: pd.DataFrame
) -> list[TaskLeftOut]:
    """The analysis (no regression check) without each single-task syntactic or semantic
    condition in turn, i.e. without its runs at every rung, for the categories that keep at
    least one task when one is left out: does a verdict rest on a single task? Multi-task
    conditions and the control are never left out. Syntactic tasks first, each category in
    the results' order."""
    multi = multitask_map(res, cfg.multitask_conditions)
    runs = res.drop_duplicates("run_id")
    runs = runs[runs["category"].isin(["syntactic", "semantic"])]
    runs = runs[~runs["condition"].astype(str).map(multi).fillna(False).astype(bool)]
    tasks = runs.drop_duplicates(["ladder", "condition"])[["ladder", "condition", "category"]]
    n_in_category = tasks.groupby(["ladder", "category"])["condition"].transform("size")
    tasks = tasks[n_in_category >= 2]
    out = []
    for category in ("syntactic", "semantic"):
        of_category = tasks[tasks["category"] == category]
        for condition in of_category["condition"].astype(str).drop_duplicates():
            ladders = of_category.loc[of_category["condition"] == condition, "ladder"]
            drop = set(res.loc[res["condition"] == condition, "run_id"].astype(str))
            stats, note = without_runs(res, pred, drop, cfg, f"a run of {condition}", flags)
            out.append(TaskLeftOut(condition, category, tuple(map(str, ladders)), stats, note))
    return out


def floor_rule_off(
    res: pd.DataFrame, pred: pd.DataFrame | None, cfg: AnalysisConfig, flags: pd.DataFrame
) -> StudyStats | None:
    """The analysis (no regression check) with the floor rule off, so rungs where nothing
    learns the target enter the slope when they are complete; None when the rule is off
    already. The rule is a judgement (a rung at the majority rate has a gap of ~0 by
    construction), so the report shows what it changes."""
    if not cfg.floor_rule:
        return None
    return analyze(
        res, pred, dataclasses.replace(cfg, floor_rule=False, regression=False),
        collapse_flags=flags,
    )  # fmt: skip


def floor_rule_line(v: LadderVerdict, off: StudyStats | None) -> str:
    """The verdict box's line for the floor rule turned off: "" when it changes nothing for
    this ladder (the same rungs enter the slope), else the verdict and slope without it."""
    if off is None:
        return ""
    k = verdict_or_none(off, v.ladder, v.lang)
    if k is None or k.n_rungs == v.n_rungs:
        return ""
    return sensitivity_sentence(
        "With the floor rule off (complete rungs at the floor enter the slope)", k
    )


MULTITASK_ONLY_NOTE = (
    "The same analysis on the multi-task conditions alone: each category's mix (e.g. "
    "all_syntactic, all_semantic) stands in for its tasks, so the gap is mix minus mix; the "
    "single-task conditions are left out and the control stays (floor rule). The headline "
    "keeps the mixes out of the category means."
)


def multitask_only(
    res: pd.DataFrame, pred: pd.DataFrame | None, cfg: AnalysisConfig, flags: pd.DataFrame
) -> tuple[StudyStats | None, str]:
    """The analysis (no regression check) of the multi-task conditions alone, each counted as
    a task of its category, with the control kept for the floor rule: the semantic-minus-
    syntactic gap of the mixes, for the ladders with a syntactic and a semantic mix. (None, "")
    when no ladder has both; (None, why) when the analysis fails."""
    multi = multitask_map(res, cfg.multitask_conditions)
    is_multi = res["condition"].astype(str).map(multi).fillna(False).astype(bool)
    categories = res[is_multi].groupby("ladder")["category"].agg(set)
    ladders = [lad for lad, cats in categories.items() if {"syntactic", "semantic"} <= cats]
    if not ladders:
        return None, ""
    single = ~is_multi & (res["category"] != "none")
    drop = set(res.loc[single | ~res["ladder"].isin(ladders), "run_id"].astype(str))
    mixes_cfg = dataclasses.replace(cfg, multitask_conditions=(), include_multitask=False)
    return without_runs(res, pred, drop, mixes_cfg, "a single-task run", flags)


def multitask_only_line(v: LadderVerdict, stats: StudyStats | None, note: str) -> str:
    """The verdict box's line for the mixes alone ("" when the study has no such analysis or
    the ladder has no mixes)."""
    if stats is None:
        return f"Multi-task conditions alone: {note}" if note else ""
    k = verdict_or_none(stats, v.ladder, v.lang)
    if k is None:
        return ""
    text = sensitivity_sentence("Multi-task conditions alone (mix minus mix)", k)
    if k.n_rungs >= 2:
        text += (
            f"; gap {fmt_pp(k.gap_smallest)} pp {fmt_ci(k.gap_smallest_ci)} at {k.smallest}, "
            f"{fmt_pp(k.gap_largest)} pp {fmt_ci(k.gap_largest_ci)} at {k.largest}"
        )
    elif k.n_rungs == 1:
        text += f"; gap {fmt_pp(k.gap_largest)} pp {fmt_ci(k.gap_largest_ci)} at {k.largest}"
    return text


def left_out_verdict(t: TaskLeftOut, ladder: str, label: str) -> LadderVerdict | None:
    if t.stats is None or ladder not in t.ladders:
        return None
    return verdict_or_none(t.stats, ladder, label)


def leave_one_out_rows(stats: StudyStats, left: list[TaskLeftOut], label: str) -> pd.DataFrame:
    """Per ladder: the verdict on `label` with every task, then without each task in turn."""
    level = f"{100 * stats.config.ci_level:g}% CI"
    rows = []
    for v in stats.verdicts:
        if v.lang != label:
            continue
        mine = [t for t in left if v.ladder in t.ladders]
        if not mine:
            continue  # no task of this ladder can be left out
        for t in [None, *mine]:
            k = v if t is None else left_out_verdict(t, v.ladder, label)
            row: dict[str, Any] = {
                "ladder": v.ladder,
                "left out": "(none)" if t is None else t.condition,
                "category": "" if t is None else t.category,
            }
            if k is None:
                assert t is not None
                row.update({"verdict": "–", "why": t.note or "ladder has no runs left"})
            else:
                row.update(
                    {
                        "verdict": k.verdict,
                        "slope (pp/decade)": fmt_pp(k.slope),
                        level: fmt_ci(k.slope_ci),
                        "gap at smallest (pp)": f"{fmt_pp(k.gap_smallest)} "
                        f"{fmt_ci(k.gap_smallest_ci)}",
                        "gap at largest (pp)": f"{fmt_pp(k.gap_largest)} "
                        f"{fmt_ci(k.gap_largest_ci)}",
                        "rungs": k.n_rungs,
                        "why": "; ".join(k.reasons),
                    }
                )
            rows.append(row)
    return pd.DataFrame(rows)


def leave_one_out_line(v: LadderVerdict, left: list[TaskLeftOut]) -> str:
    """The verdict box's line: whether the ladder's verdict survives leaving out any one task
    ("" when no task can be left out)."""
    found = [
        (t.condition, left_out_verdict(t, v.ladder, v.lang)) for t in left if v.ladder in t.ladders
    ]
    if not found:
        return ""
    changed = [
        f"{c} ({k.verdict if k else 'no analysis'})"
        for c, k in found
        if k is None or k.verdict != v.verdict
    ]
    slopes = [k.slope for _, k in found if k is not None and np.isfinite(k.slope)]
    text = f"Leaving out one task at a time ({len(found)} tasks): " + (
        f"the verdict stays {v.verdict} without any one of them"
        if not changed
        else "the verdict changes without " + ", ".join(changed)
    )
    if slopes:
        text += f"; slope {fmt_pp(min(slopes))} to {fmt_pp(max(slopes))} pp/decade"
    return text


def sensitivity_sentence(name: str, k: LadderVerdict) -> str:
    """One line of a verdict box: the verdict and slope of a variant analysis. An
    "inconclusive" whose slope CI excludes 0 says why (e.g. the gap's sign is unresolved), so
    the line does not read as contradicting itself."""
    if k.n_rungs < 2:
        return f"{name}: {k.verdict} ({k.n_rungs} rung(s) in the slope; a slope needs 2)"
    text = (
        f"{name}: {k.verdict}, slope {fmt_pp(k.slope)} pp/decade, CI {fmt_ci(k.slope_ci)} "
        f"({k.n_rungs} rungs in the slope, {k.smallest} … {k.largest})"
    )
    lo, hi = k.slope_ci
    if k.verdict == "inconclusive" and (lo > 0 or hi < 0) and k.reasons:
        text += f"; inconclusive although the CI excludes 0: {'; '.join(k.reasons)}"
    return text


def unlearned_line(
    res: pd.DataFrame, drop: set[str], v: LadderVerdict, stats: StudyStats | None, note: str
) -> str:
    """The verdict box's line for the analysis without unlearned-intermediate runs ("" when
    `v`'s ladder has none of them), as plain text."""
    name = unlearned_name(res, drop, v.ladder)
    if not name:
        return ""
    u = verdict_or_none(stats, v.ladder, v.lang) if stats else None
    if u is not None:
        return sensitivity_sentence(name, u)
    return f"{name}: {note or 'ladder has no runs left'}"


def unlearned_name(res: pd.DataFrame, drop: set[str], ladder: str) -> str:
    """'Without the N runs whose intermediate task was not learned (cola ×3, …)' for a ladder;
    "" when the ladder has none."""
    runs = res[(res["ladder"] == ladder) & res["run_id"].astype(str).isin(drop)]
    per = runs.drop_duplicates("run_id").groupby("condition").size()
    if per.empty:
        return ""
    what = ", ".join(f"{c} ×{n}" for c, n in per.items())
    return (
        f"Without the {int(per.sum())} run(s) of this ladder whose intermediate task was not "
        f"learned (dev metric not above its baseline: {what})"
    )
