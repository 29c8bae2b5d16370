"""One self-contained HTML report (inline CSS, base64 PNG figures, no scripts, no external
assets) and a Markdown summary: verdict first, then design, figures, tables and caveats."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as _dt
import hashlib
import html
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xstilts.analysis import figures
from xstilts.analysis.collapse import (
    CollapseConfig,
    collapse_rate,
    collapsed_run_ids,
    detect_collapse,
)
from xstilts.analysis.schema import (
    GROUP_BREAKDOWN,
    LANGUAGE_GROUPS,
    lower_is_better,
    multitask_map,
    validate_intermediate,
    validate_predictions,
    validate_results,
)
from xstilts.analysis.sensitivity import (
    LEAVE_ONE_OUT_NOTE,
    MULTITASK_ONLY_NOTE,
    floor_rule_line,
    floor_rule_off,
    leave_one_out_line,
    leave_one_out_rows,
    leave_one_task_out,
    multitask_only,
    multitask_only_line,
    unlearned_line,
    unlearned_runs,
    without_runs,
)
from xstilts.analysis.stats import (
    AnalysisConfig,
    RegressionResult,
    StudyStats,
    accuracy_consistency,
    analyze,
    fmt_ci,
    fmt_pp,
    fmt_size,
)

DESIGN_KEYS: tuple[tuple[str, str], ...] = (
    ("ladders", "Ladders"),
    ("conditions", "Conditions and categories"),
    ("seeds", "Seeds"),
    ("languages", "Languages"),
    ("hyperparameters", "Hyperparameters"),
    ("data_sources", "Data sources"),
)
PRETRAINING_CAPTION = (
    "Masked-LM pretraining per rung (held-out loss in nats; 'unigram reference': the per-language "
    "unigram loss of the same held-out text, the score of a model that uses no context)"
)
RESERVED_KEYS = {"title", "question", "caveats", *(k for k, _ in DESIGN_KEYS)}


@dataclass(frozen=True)
class ReportPaths:
    """Where `build_report` wrote its two files."""

    html: Path
    markdown: Path


def intermediate_summary(
    intermediate: pd.DataFrame | None, model_order: list[str] | None = None
) -> pd.DataFrame:
    """Mean, min and max over seeds of each model × condition × task × metric, its baseline,
    and the margin over the baseline (sign-flipped for loss-like metrics, so > 0 = better).
    Rows follow `model_order` (e.g. by size) where given, then condition, task, metric."""
    cols = [
        "model",
        "condition",
        "task",
        "metric",
        "n_seeds",
        "mean",
        "min",
        "max",
        "baseline",
        "lower_is_better",
        "margin",
        "margin_min",
        "margin_max",
        "beats_baseline",
    ]
    if intermediate is None or intermediate.empty:
        return pd.DataFrame(columns=cols)
    d = validate_intermediate(intermediate)
    g = d.groupby(["model", "condition", "task", "metric"], sort=True)
    out = g.agg(
        n_seeds=("seed", "nunique"),
        mean=("value", "mean"),
        min=("value", "min"),
        max=("value", "max"),
        baseline=("baseline", "mean"),
    ).reset_index()
    lower = lower_is_better(out["metric"])
    sign = np.where(lower, -1.0, 1.0)
    out["lower_is_better"] = lower
    out["margin"] = sign * (out["mean"] - out["baseline"])
    a, b = sign * (out["min"] - out["baseline"]), sign * (out["max"] - out["baseline"])
    out["margin_min"], out["margin_max"] = np.minimum(a, b), np.maximum(a, b)
    out["beats_baseline"] = (out["margin_min"] > 0).to_numpy()
    if model_order:
        rank = {m: i for i, m in enumerate(model_order)}
        out["_rank"] = out["model"].map(lambda m: rank.get(m, len(rank)))
        out = out.sort_values(["_rank", "model", "condition", "task", "metric"], kind="stable")
    return out[cols].reset_index(drop=True)


def pretraining_summary(pretraining: pd.DataFrame) -> pd.DataFrame:
    """One row per pretrained rung: tokens and steps, the last held-out MLM loss, the context-free
    reference (per-language unigram) and how far below it the rung ended, device and seconds."""
    rows = []
    for model, g in pretraining.groupby("model", sort=False):
        evals = g.dropna(subset=["eval_loss"])
        final = float(evals["eval_loss"].iloc[-1]) if len(evals) else np.nan
        ref = pd.to_numeric(g["unigram_eval_loss"], errors="coerce").dropna()
        reference = float(ref.iloc[0]) if len(ref) else np.nan
        last = g.iloc[-1]
        rows.append(
            {
                "ladder": last["ladder"],
                "model": model,
                "tokens": fmt_size(float(last["tokens"])),
                "steps": int(last["step"]),
                "first eval loss": float(evals["eval_loss"].iloc[0]) if len(evals) else np.nan,
                "final eval loss": final,
                "unigram reference": reference,
                "below reference": reference - final,
                "device": last["device"],
                "seconds": float(last["seconds"]),
            }
        )
    return pd.DataFrame(rows)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _Auditor(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.images = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.problems.append("contains a <script>")
        if tag == "img":
            self.images += 1
            src = a.get("src") or ""
            prefix = "data:image/png;base64,"
            if not src.startswith(prefix):
                self.problems.append(f"<img> #{self.images} is not an inline PNG: {src[:60]!r}")
            else:
                try:
                    raw = base64.b64decode(src[len(prefix) :], validate=True)
                except (binascii.Error, ValueError):
                    raw = b""
                if not raw.startswith(PNG_SIGNATURE) or len(raw) < 67:
                    self.problems.append(f"<img> #{self.images} does not decode to a PNG")
        for key in ("src", "href", "data", "poster"):
            val = (a.get(key) or "").strip().lower()
            if val and not val.startswith(("data:", "#")):
                self.problems.append(f"<{tag} {key}=...> points outside the file: {val[:60]!r}")
        if tag == "link":
            self.problems.append("contains a <link> (external stylesheet or asset)")


def audit_html(text: str) -> tuple[int, list[str]]:
    """Check that a report is self-contained: every <img> is an inline base64 PNG that
    decodes, no scripts, no links or sources outside the file. Returns (images, problems)."""
    auditor = _Auditor()
    auditor.feed(text)
    auditor.close()
    return auditor.images, auditor.problems


# ----------------------------------------------------------------------------- formatting


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _fmt_cell(v: object) -> str:
    if v is None:
        return "–"
    if isinstance(v, float | np.floating):
        if not np.isfinite(v):
            return "–"
        return f"{v:.4g}"
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    return str(v)


def _html_table(df: pd.DataFrame, caption: str | None = None) -> str:
    if df is None or df.empty:
        return "<p class='muted'>(empty)</p>"
    head = "".join(f"<th>{_e(c)}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(_fmt_cell(v))}</td>" for v in row) + "</tr>"
        for row in df.itertuples(index=False)
    )
    cap = f"<caption>{_e(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(df: pd.DataFrame) -> str:
    if df is None or df.empty:
        return "_(empty)_\n"

    def cell(v: object) -> str:
        return _fmt_cell(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in df.columns) + " |"]
    lines.append("|" + "|".join(" --- " for _ in df.columns) + "|")
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _meta_html(v: Any) -> str:
    if isinstance(v, Mapping):
        if not v:
            return "<span class='muted'>(none)</span>"
        rows = "".join(f"<tr><th>{_e(k)}</th><td>{_meta_html(x)}</td></tr>" for k, x in v.items())
        return f"<table class='kv'>{rows}</table>"
    if isinstance(v, list | tuple | set):
        if not v:
            return "<span class='muted'>(none)</span>"
        return "<ul>" + "".join(f"<li>{_meta_html(x)}</li>" for x in v) + "</ul>"
    return _e(v)


def _meta_md(v: Any, indent: int = 0) -> str:
    pad = "  " * indent
    if isinstance(v, Mapping):
        return "".join(
            f"{pad}- **{k}**: {x}\n"
            if not isinstance(x, Mapping | list | tuple | set)
            else f"{pad}- **{k}**:\n{_meta_md(x, indent + 1)}"
            for k, x in v.items()
        )
    if isinstance(v, list | tuple | set):
        return "".join(
            _meta_md(x, indent + 1) if isinstance(x, Mapping | list | tuple) else f"{pad}- {x}\n"
            for x in v
        )
    return f"{pad}{v}\n"


def _img(b64: str, alt: str, caption: str) -> str:
    return (
        f'<figure><img src="data:image/png;base64,{b64}" alt="{_e(alt)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _digest(df: pd.DataFrame | None, keys: list[str]) -> str:
    if df is None or df.empty:
        return "n/a"
    d = df.sort_values([k for k in keys if k in df.columns]).reset_index(drop=True)
    h = pd.util.hash_pandas_object(d, index=False).to_numpy().tobytes()
    return hashlib.sha256(h).hexdigest()[:16]


CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;
max-width:1180px;padding:0 16px;color:#1d1d1d;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;
margin-top:1.6em}h3{margin-top:1.2em}
.verdict{border:2px solid #444;border-radius:8px;padding:12px 16px;margin:12px 0;background:#fafafa}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:bold;color:#fff}
.amplifies{background:#2e7d32}.diminishes{background:#c62828}.inconclusive{background:#757575}
table{border-collapse:collapse;margin:8px 0 16px;font-size:.86em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
thead th{background:#eee}caption{text-align:left;font-weight:bold;padding:4px 0}
table.kv th{background:#f4f4f4;font-weight:600}
figure{margin:12px 0}img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}.muted{color:#777}
.caveats li{margin:3px 0}code{background:#f2f2f2;padding:0 3px}
"""


# ----------------------------------------------------------------------------- report pieces


def _verdict_rows(stats: StudyStats, labels: Iterable[str]) -> pd.DataFrame:
    rows = []
    for v in stats.verdicts:
        if v.lang not in labels:
            continue
        rows.append(
            {
                "ladder": v.ladder,
                "languages": v.lang,
                "verdict": v.verdict,
                "slope (pp/decade)": fmt_pp(v.slope),
                f"{100 * stats.config.ci_level:g}% CI": fmt_ci(v.slope_ci),
                "CI, tasks resampled": fmt_ci(v.slope_ci_tasks),
                "gap at smallest (pp)": f"{fmt_pp(v.gap_smallest)} {fmt_ci(v.gap_smallest_ci)}",
                "gap at largest (pp)": f"{fmt_pp(v.gap_largest)} {fmt_ci(v.gap_largest_ci)}",
                "rungs": v.n_rungs,
                "why": "; ".join(v.reasons),
            }
        )
    return pd.DataFrame(rows)


def _regression_rows(stats: StudyStats) -> pd.DataFrame:
    rows = []
    for r in stats.regressions:
        rows.append(
            {
                "ladder": r.ladder,
                "fitted on": _regression_scope(r),
                "languages": r.lang,
                "method": r.method,
                "semantic × log10(size) (pp/decade)": fmt_pp(r.coef),
                "CI": fmt_ci((r.ci_low, r.ci_high)),
                "p": f"{r.p_value:.3g}" if np.isfinite(r.p_value) else "–",
                "rows": r.n_obs,
                "runs": r.n_runs,
                "note": r.note,
            }
        )
    return pd.DataFrame(rows)


def _regression_scope(r: RegressionResult) -> str:
    """Which runs a regression check fitted: the slope's rungs, or every run (sensitivity)."""
    rungs = ", ".join(r.models) if r.models else "none"
    if r.scope == "all runs":
        return f"all runs ({rungs}), incl. rungs left out of the slope"
    return f"the slope's rungs ({rungs})"


def _regression_sentence(r: RegressionResult) -> str:
    """One line for the verdict box: which check, on which runs, and its interaction."""
    name = "Regression check" if r.scope == "slope rungs" else "Sensitivity check"
    if r.method == "none":
        return f"{name} not fitted ({_regression_scope(r)}): {r.note}"
    p = f"{r.p_value:.3g}" if np.isfinite(r.p_value) else "–"
    return (
        f"{name} ({r.method}; {_regression_scope(r)}; {r.n_runs} runs): semantic × "
        f"log10(size) = {fmt_pp(r.coef)} pp/decade, CI {fmt_ci((r.ci_low, r.ci_high))}, p = {p}"
    )


def _gap_rows(stats: StudyStats, label: str) -> pd.DataFrame:
    g = stats.gaps[stats.gaps["lang"] == label].sort_values(["ladder", "size"])
    return pd.DataFrame(
        {
            "ladder": g["ladder"],
            "model": g["model"],
            "layers": g["layers"],
            "size": [fmt_size(s) for s in g["size"]],
            "semantic (%)": [fmt_pp(v, False) for v in g["semantic"]],
            "syntactic (%)": [fmt_pp(v, False) for v in g["syntactic"]],
            "tasks sem/syn": [
                f"{a}/{b}" for a, b in zip(g["n_semantic"], g["n_syntactic"], strict=True)
            ],
            "gap (pp)": [fmt_pp(v) for v in g["gap"]],
            "CI": [fmt_ci((a, b)) for a, b in zip(g["ci_low"], g["ci_high"], strict=True)],
            "in slope": [
                "yes" if ok else ("no: " + why.split(": ", 1)[-1] if why else "no")
                for ok, why in zip(g["in_slope"], g["left_out_why"], strict=True)
            ],
        }
    )


def _cell_rows(stats: StudyStats, label: str) -> pd.DataFrame:
    c = stats.cells[stats.cells["lang"] == label].sort_values(
        ["ladder", "size", "category", "multitask", "condition"]
    )
    return pd.DataFrame(
        {
            "ladder": c["ladder"],
            "model": c["model"],
            "condition": c["condition"],
            "category": c["category"] + np.where(c["multitask"], " (multi-task)", ""),
            "seeds": c["n_seeds"],
            "accuracy (%)": [fmt_pp(v, False) for v in c["mean"]],
            "CI": [fmt_ci((a, b), False) for a, b in zip(c["ci_low"], c["ci_high"], strict=True)],
            "gain over none (pp)": [fmt_pp(v) for v in c["gain"]],
            "gain CI": [
                fmt_ci((a, b)) for a, b in zip(c["gain_ci_low"], c["gain_ci_high"], strict=True)
            ],
        }
    )


def _design_from_data(res: pd.DataFrame, cfg: AnalysisConfig) -> dict[str, pd.DataFrame]:
    rungs = (
        res.groupby(["ladder", "model"], sort=False)
        .agg(
            layers=("layers", "first"),
            params_non_embedding=("params_non_embedding", "first"),
            params_embedding=("params_embedding", "first"),
            params_total=("params_total", "first"),
            runs=("run_id", "nunique"),
        )
        .reset_index()
        .sort_values(["ladder", "params_non_embedding"])
    )
    for c in ("params_non_embedding", "params_embedding", "params_total"):
        rungs[c] = [fmt_size(v) for v in rungs[c]]
    conds = (
        res.groupby(["condition", "category"])
        .agg(runs=("run_id", "nunique"), seeds=("seed", "nunique"))
        .reset_index()
    )
    conds["multi-task"] = conds["condition"].map(multitask_map(res, cfg.multitask_conditions))
    conds = conds.sort_values(["category", "multi-task", "condition"])
    other = pd.DataFrame(
        {
            "item": ["seeds", "languages", "splits", "runs"],
            "value": [
                ", ".join(map(str, sorted(res["seed"].unique()))),
                ", ".join(sorted(res["lang"].unique())),
                ", ".join(sorted(res["split"].unique())),
                str(res["run_id"].nunique()),
            ],
        }
    )
    return {"rungs": rungs, "conditions": conds, "other": other}


def _meta_conflicts(study_meta: Mapping[str, Any], res: pd.DataFrame) -> list[str]:
    """Where the declared design (study_meta) and the results disagree."""
    out = []
    conds = study_meta.get("conditions")
    if isinstance(conds, Mapping):
        found = res.drop_duplicates("condition").set_index("condition")["category"].to_dict()
        for name, spec in conds.items():
            cat = spec.get("category") if isinstance(spec, Mapping) else spec
            if name in found and isinstance(cat, str) and cat != found[name]:
                out.append(f"study_meta says {name!r} is {cat!r}; the results say {found[name]!r}.")
        missing = sorted(map(str, set(conds) - set(found)))
        if missing:
            out.append(f"Conditions declared in study_meta without results: {', '.join(missing)}.")
        extra = sorted(map(str, set(found) - set(map(str, conds))))
        if extra:
            out.append(f"Conditions in the results not declared in study_meta: {', '.join(extra)}.")
    for key, col in (("seeds", "seed"), ("languages", "lang")):
        declared = study_meta.get(key)
        if isinstance(declared, list | tuple | set):
            want = {str(x) for x in declared}
            have = {str(x) for x in res[col].unique()}
            if want != have:
                out.append(
                    f"study_meta {key} {sorted(want)} differ from the results' {sorted(have)}."
                )
    return out


def _collapse_warning(verdict: str, kept: str | None, n_collapsed: int) -> str:
    """A warning when the verdict does not survive leaving the collapsed runs out."""
    if not n_collapsed or verdict == "inconclusive" or kept == verdict:
        return ""
    without = kept if kept is not None else "not computable"
    return (
        f"Not robust to collapse: without the {n_collapsed} collapsed run(s) the verdict is "
        f"{without}. The gap here measures which conditions collapsed (fine-tuning stability), "
        "not how well the rest transfer; more seeds or other hyperparameters are needed."
    )


def build_report(
    results: pd.DataFrame,
    predictions: pd.DataFrame | None,
    intermediate: pd.DataFrame | None,
    study_meta: Mapping[str, Any],
    out_dir: str | Path,
    *,
    config: AnalysisConfig | None = None,
    collapse_config: CollapseConfig | None = None,
    name: str = "report",
    pretraining: pd.DataFrame | None = None,
) -> ReportPaths:
    """Analyse the study and write `<out_dir>/<name>.html` (self-contained) and
    `<out_dir>/<name>.md`. `study_meta` keys used: title, question, ladders, conditions,
    seeds, languages, hyperparameters, data_sources, caveats (others are listed as-is).
    `pretraining` (`pretraining.csv`: the MLM logs of rungs xstilts pretrained) adds a section."""
    cfg = config or AnalysisConfig()
    if cfg.multitask_conditions is None and "multitask_conditions" in study_meta:
        cfg = dataclasses.replace(
            cfg, multitask_conditions=tuple(study_meta["multitask_conditions"])
        )
    ccfg = collapse_config or CollapseConfig()
    res = validate_results(results)
    pred = validate_predictions(predictions) if predictions is not None else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    flags = detect_collapse(res, pred, ccfg)
    stats = analyze(res, pred, cfg, collapse_flags=flags)
    target = stats.target
    rates = collapse_rate(flags)
    n_collapsed = int(flags["collapsed"].sum())
    kept_stats: StudyStats | None = None
    kept_note = ""
    if n_collapsed:
        kept_stats, kept_note = without_runs(
            res, pred, collapsed_run_ids(flags), cfg, "collapsed", flags
        )
    unlearned = unlearned_runs(intermediate)
    unlearned_ids = set(
        res.merge(unlearned[["model", "condition", "seed"]], on=["model", "condition", "seed"])[
            "run_id"
        ]
    )
    learned_stats: StudyStats | None = None
    learned_note = ""
    if unlearned_ids:
        learned_stats, learned_note = without_runs(
            res, pred, unlearned_ids, cfg, "unlearned-intermediate", flags
        )
    left_out_tasks = leave_one_task_out(res, pred, cfg, flags)
    mixes_stats, mixes_note = multitask_only(res, pred, cfg, flags)
    floor_off = floor_rule_off(res, pred, cfg, flags)
    consistency = accuracy_consistency(res, pred) if pred is not None else None
    by_size = res.sort_values(["params_non_embedding", "model"])["model"].drop_duplicates()
    inter = intermediate_summary(intermediate, by_size.tolist())

    caveats: list[str] = [str(c) for c in study_meta.get("caveats", []) or []]
    auto: list[str] = list(stats.notes)
    auto += _meta_conflicts(study_meta, res)
    if pred is None:
        auto.append(
            "No predictions given: example-level resampling is binomial per run and the "
            "constant-prediction collapse check is skipped."
        )
    if consistency is not None and not consistency["consistent"].all():
        bad = consistency[~consistency["consistent"]]
        auto.append(
            f"{len(bad)} run × language × split rows: accuracy or n in results differs from "
            "the predictions (see provenance)."
        )
    if n_collapsed:
        auto.append(
            f"{n_collapsed} of {len(flags)} runs flagged as collapsed; headline numbers "
            "include them, the table 'without collapsed runs' excludes them."
        )
    if not inter.empty and not inter["beats_baseline"].all():
        fails = inter[~inter["beats_baseline"]]
        auto.append(
            f"{len(fails)} intermediate model × task × metric results do not beat their baseline "
            "on every seed: " + ", ".join(sorted(set(fails["model"] + "/" + fails["task"])))[:400]
        )

    # ---------------------------------------------------------------- figures
    fig_gap = figures.gap_vs_size(stats)
    fig_cat = figures.accuracy_by_category(stats, target)
    fig_heat = figures.language_condition_heatmap(stats)
    fig_bars = figures.task_bars(stats, target)
    fig_inter = figures.intermediate_vs_baseline(inter) if not inter.empty else None
    pre = pretraining_summary(pretraining) if pretraining is not None else None

    title = str(
        study_meta.get("title", "xstilts: does scale amplify the semantic − syntactic gap?")
    )
    question = str(
        study_meta.get(
            "question",
            "Does scaling the pretrained model amplify or diminish the difference between "
            "syntactic and semantic English intermediate-task training for zero-shot "
            "cross-lingual transfer on PAWS-X?",
        )
    )
    level = f"{100 * cfg.ci_level:g}%"
    definitions = (
        f"Gap = semantic − syntactic accuracy on <b>{_e(target)}</b> ({_e(cfg.split)} split), "
        "each task weighted equally within its category"
        + ("" if not cfg.include_multitask else ", multi-task conditions included")
        + f". Size axis: log10 of <b>{_e(cfg.size_axis)}</b>; slopes are pp per 10× size. "
        f"{level} percentile CIs from a hierarchical bootstrap (B = {cfg.n_boot}, seed "
        f"{cfg.seed}): seeds resampled within each rung × condition, then test examples "
        + (
            f"({_e(cfg.example_resampling)} across runs)"
            if pred is not None
            else "(no per-example predictions: a binomial draw per run, independent across runs)"
        )
        + ". Verdict: <i>amplifies</i> if the slope CI "
        "excludes 0 on the side that makes the gap's magnitude grow (for a positive gap: above "
        "0), <i>diminishes</i> if it excludes 0 on the other side, else <i>inconclusive</i>; "
        "also inconclusive with < 2 rungs, a category without tasks, or a gap whose sign is "
        "unresolved. A rung enters the slope only when it has every syntactic and semantic task "
        f"of its ladder with at least {cfg.min_seeds} seeds (or as many as the ladder's "
        "best-covered cell, if fewer): every rung then compares the same tasks"
        + (
            ", and only when it is above the floor: some condition there (the control, a task "
            f"or a multi-task mix) learns the target in at least "
            f"{100 * cfg.floor_learned_share:g}% of its runs, i.e. is not flagged as collapsed. "
            "Where nothing learns the target every gap is bounded by the majority rate."
            if cfg.floor_rule
            else "."
        )
    )
    headline = stats.headline()
    kept_by_ladder = {v.ladder: v for v in kept_stats.headline()} if kept_stats else {}
    reg_by_ladder: dict[str, list[RegressionResult]] = {}
    for r in stats.regressions:
        reg_by_ladder.setdefault(r.ladder, []).append(r)

    # the sensitivity lines under each verdict (plain text, non-empty, in this order), for
    # both the HTML and the Markdown verdict boxes
    variant_lines = {
        v.ladder: [
            line
            for line in (
                unlearned_line(res, unlearned_ids, v, learned_stats, learned_note),
                floor_rule_line(v, floor_off),
                leave_one_out_line(v, left_out_tasks),
                multitask_only_line(v, mixes_stats, mixes_note),
            )
            if line
        ]
        for v in headline
    }

    # ---------------------------------------------------------------- HTML
    h: list[str] = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1><p><i>{_e(question)}</i></p>",
        "<h2 id='verdict'>Verdict</h2>",
    ]
    if not headline:
        h.append(
            "<div class='verdict'><span class='badge inconclusive'>inconclusive</span> "
            "no ladder could be analysed.</div>"
        )
    for v in headline:
        extra = []
        for r in reg_by_ladder.get(v.ladder, []):
            note = "" if r.method == "none" else f" {r.note}"  # "none": the note is the sentence
            extra.append(f"{_e(_regression_sentence(r))}.{_e(note)}")
        k = kept_by_ladder.get(v.ladder)
        if k is not None:
            extra.append(
                f"Without collapsed runs: <b>{_e(k.verdict)}</b>, slope {fmt_pp(k.slope)} "
                f"pp/decade, CI {fmt_ci(k.slope_ci)}."
            )
        elif n_collapsed:
            extra.append(f"Without collapsed runs: {_e(kept_note or 'ladder has no runs left')}.")
        extra += [_e(line) + "." for line in variant_lines[v.ladder]]
        warning = _collapse_warning(v.verdict, k.verdict if k is not None else None, n_collapsed)
        if warning:
            extra.append(f"<b>{_e(warning)}</b>")
        h.append(
            f"<div class='verdict'><span class='badge {_e(v.verdict)}'>{_e(v.verdict)}</span> "
            f"<b>{_e(v.ladder)}</b><p>{_e(v.text)}</p>"
            + "".join(f"<p>{x}</p>" for x in extra)
            + "</div>"
        )
    h.append(f"<p class='muted'>{definitions}</p>")
    breakdown = [target, *[g for g in GROUP_BREAKDOWN if g != target]]
    other_avgs = [g for g in LANGUAGE_GROUPS if g not in breakdown]
    h.append("<h3>By language group</h3>")
    h.append(_html_table(_verdict_rows(stats, [*breakdown, *other_avgs])))
    if left_out_tasks:
        h.append("<h3>Leave one task out</h3>")
        h.append(f"<p class='muted'>{_e(LEAVE_ONE_OUT_NOTE)}</p>")
        h.append(_html_table(leave_one_out_rows(stats, left_out_tasks, target)))
    if mixes_stats is not None:
        h.append("<h3>Multi-task conditions alone</h3>")
        h.append(f"<p class='muted'>{_e(MULTITASK_ONLY_NOTE)}</p>")
        h.append(_html_table(_gap_rows(mixes_stats, target)))
    h.append("<h3>Regression check: accuracy ~ category × log10(size)</h3>")
    h.append(_html_table(_regression_rows(stats)))

    h.append("<h2 id='design'>Study design</h2>")
    for key, heading in DESIGN_KEYS:
        if key in study_meta:
            h.append(f"<h3>{_e(heading)}</h3>{_meta_html(study_meta[key])}")
    for key, value in study_meta.items():
        if key not in RESERVED_KEYS:
            h.append(f"<h3>{_e(key)}</h3>{_meta_html(value)}")
    design = _design_from_data(res, cfg)
    h.append("<h3>As found in the results</h3>")
    h.append(_html_table(design["rungs"], "Rungs"))
    h.append(_html_table(design["conditions"], "Conditions"))
    h.append(_html_table(design["other"]))

    h.append("<h2 id='gap'>Gap vs size</h2>")
    h.append(
        _img(
            fig_gap,
            "gap vs size",
            f"Semantic − syntactic gap (pp) against "
            f"{cfg.size_axis}; bands are {level} hierarchical-bootstrap CIs; hollow points: "
            "rungs left out of the slope (incomplete, or at the floor; see the table).",
        )
    )
    h.append(_html_table(_gap_rows(stats, target), f"Gap per rung, {target}"))
    h.append("<h2 id='categories'>Accuracy vs size per category</h2>")
    h.append(
        _img(
            fig_cat,
            "accuracy vs size per category",
            f"Category means (equal-weight over tasks) on {target}, {level} CI bands; "
            "dashed: multi-task conditions.",
        )
    )
    h.append("<h2 id='heatmap'>Language × condition</h2>")
    h.append(
        _img(
            fig_heat,
            "language by condition heatmap",
            "Gain over the none control (pp), mean over seeds, per rung.",
        )
    )
    h.append("<h2 id='tasks'>Per-task gains</h2>")
    h.append(_img(fig_bars, "per-task bars", f"Gain over none (pp) on {target} with {level} CIs."))
    h.append(_html_table(_cell_rows(stats, target), f"Per condition, {target}"))

    h.append("<h2 id='collapse'>Collapsed runs</h2>")
    h.append(
        f"<p>A run is flagged if its modal prediction covers ≥ {ccfg.modal_threshold:g} of its "
        f"{'/'.join(ccfg.splits)} predictions (pooled, or on en dev), or if its English dev "
        f"accuracy is no more than {100 * ccfg.majority_margin:g} points above the majority "
        f"rate. Flagged: <b>{n_collapsed}</b> of {len(flags)} runs.</p>"
    )
    h.append(_html_table(rates, "Collapse rate per condition"))
    shown = flags[flags["collapsed"]][
        [
            "run_id",
            "model",
            "condition",
            "seed",
            "modal_share",
            "en_dev_accuracy",
            "en_dev_majority_rate",
            "reasons",
        ]
    ]
    h.append(_html_table(shown, "Flagged runs") if len(shown) else "<p>No run flagged.</p>")
    if kept_stats is not None:
        h.append(
            _html_table(
                _verdict_rows(kept_stats, [target, *GROUP_BREAKDOWN]),
                "Verdicts without collapsed runs",
            )
        )

    h.append("<h2 id='intermediate'>Intermediate tasks</h2>")
    if fig_inter is None:
        h.append("<p class='muted'>No intermediate-task metrics given.</p>")
    else:
        h.append(
            _img(
                fig_inter,
                "intermediate metrics vs baseline",
                "Dev metric minus its majority/chance baseline; error bars: range over seeds.",
            )
        )
        h.append(_html_table(inter, "Intermediate-task dev metrics (mean over seeds)"))

    if pretraining is not None and pre is not None:
        h.append("<h2 id='pretraining'>Pretraining of the from-scratch rungs</h2>")
        h.append(
            _img(
                figures.pretraining_curves(pretraining),
                "held-out MLM loss vs tokens",
                "Held-out masked-LM loss (nats) against tokens seen; dashed: what a model that "
                "knows each sequence's language and its piece frequencies, but no context, "
                "would score on the same held-out text.",
            )
        )
        h.append(_html_table(pre, PRETRAINING_CAPTION))

    h.append("<h2 id='caveats'>Provenance and caveats</h2><h3>Caveats</h3><ul class='caveats'>")
    h += [f"<li>{_e(c)}</li>" for c in caveats + auto] or ["<li>none recorded</li>"]
    h.append("</ul>")
    prov = _provenance(res, pred, intermediate, cfg, ccfg, consistency)
    h.append("<h3>Provenance</h3>" + _meta_html(prov))
    if consistency is not None and not consistency["consistent"].all():
        h.append(
            _html_table(
                consistency[~consistency["consistent"]].head(50),
                "Results vs predictions mismatches (first 50)",
            )
        )
    h.append("</body></html>")

    html_path = out / f"{name}.html"
    html_path.write_text("\n".join(h), encoding="utf-8")

    # ---------------------------------------------------------------- Markdown
    md: list[str] = [f"# {title}\n", f"_{question}_\n", "## Verdict\n"]
    for v in headline:
        md.append(f"- **{v.verdict.upper()}** — {v.text}")
        for r in reg_by_ladder.get(v.ladder, []):
            md.append(f"  - {_regression_sentence(r)}")
        k = kept_by_ladder.get(v.ladder)
        if k is not None:
            md.append(
                f"  - Without collapsed runs: {k.verdict}, slope {fmt_pp(k.slope)} pp/decade "
                f"CI {fmt_ci(k.slope_ci)}"
            )
        md += [f"  - {line}" for line in variant_lines[v.ladder]]
        warning = _collapse_warning(v.verdict, k.verdict if k is not None else None, n_collapsed)
        if warning:
            md.append(f"  - **{warning}**")
    if not headline:
        md.append("- inconclusive: no ladder could be analysed")
    md.append("")
    md.append(
        html.unescape(
            definitions.replace("<b>", "**")
            .replace("</b>", "**")
            .replace("<i>", "_")
            .replace("</i>", "_")
        )
        + "\n"
    )
    md.append("### By language group\n")
    md.append(_md_table(_verdict_rows(stats, [*breakdown, *other_avgs])))
    if left_out_tasks:
        md.append(f"### Leave one task out ({target})\n")
        md.append(f"{LEAVE_ONE_OUT_NOTE}\n")
        md.append(_md_table(leave_one_out_rows(stats, left_out_tasks, target)))
    if mixes_stats is not None:
        md.append(f"### Multi-task conditions alone ({target})\n")
        md.append(f"{MULTITASK_ONLY_NOTE}\n")
        md.append(_md_table(_gap_rows(mixes_stats, target)))
    md.append(f"### Gap per rung ({target})\n")
    md.append(_md_table(_gap_rows(stats, target)))
    md.append("## Study design\n")
    for key, heading in DESIGN_KEYS:
        if key in study_meta:
            md.append(f"**{heading}**\n\n{_meta_md(study_meta[key])}")
    md.append(_md_table(design["rungs"]))
    md.append(_md_table(design["conditions"]))
    md.append(_md_table(design["other"]))
    md.append(f"## Collapsed runs\n\n{n_collapsed} of {len(flags)} runs flagged.\n")
    md.append(_md_table(rates))
    if n_collapsed:
        md.append(_md_table(shown[["run_id", "condition", "seed", "reasons"]]))
    if pre is not None:
        md.append(f"## Pretraining of the from-scratch rungs\n\n{PRETRAINING_CAPTION}.\n")
        md.append(_md_table(pre))
    md.append("## Caveats\n")
    md += [f"- {c}" for c in caveats + auto] or ["- none recorded"]
    md.append(f"\nFull report with figures: `{html_path.name}`.\n")
    md_path = out / f"{name}.md"
    md_path.write_text("\n".join(md), encoding="utf-8")
    return ReportPaths(html=html_path, markdown=md_path)


def _provenance(
    res: pd.DataFrame,
    pred: pd.DataFrame | None,
    intermediate: pd.DataFrame | None,
    cfg: AnalysisConfig,
    ccfg: CollapseConfig,
    consistency: pd.DataFrame | None,
) -> dict[str, Any]:
    import matplotlib
    import scipy
    import statsmodels

    import xstilts

    n_bad = 0 if consistency is None else int((~consistency["consistent"]).sum())
    return {
        "generated (UTC)": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "xstilts": xstilts.__version__,
        "python": platform.python_version(),
        "numpy / pandas / scipy / statsmodels / matplotlib": " / ".join(
            [
                np.__version__,
                pd.__version__,
                scipy.__version__,
                statsmodels.__version__,
                matplotlib.__version__,
            ]
        ),
        "analysis config": {f.name: str(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)},
        "collapse config": {f.name: str(getattr(ccfg, f.name)) for f in dataclasses.fields(ccfg)},
        "results": f"{len(res)} rows, {res['run_id'].nunique()} runs, digest "
        f"{_digest(res, ['run_id', 'lang', 'split'])}",
        "predictions": "none"
        if pred is None
        else f"{len(pred)} rows, digest {_digest(pred, ['run_id', 'lang', 'split', 'example_id'])}",
        "intermediate": "none" if intermediate is None else f"{len(intermediate)} rows",
        "results vs predictions": "not checked"
        if consistency is None
        else f"{len(consistency) - n_bad} consistent, {n_bad} mismatched",
    }
