"""Hierarchical-bootstrap accuracy, gains, semantic − syntactic gap and its slope against size,
plus a mixed-model check of category × log10(size) and a cautious verdict per ladder."""

# Conventions (stated once, used everywhere):
#   * Accuracies, gaps and slopes are fractions (0..1); the report prints them in points (pp).
#   * The size axis is `AnalysisConfig.size_column`, non-embedding parameters by default, and
#     slopes are per decade: change in the gap per 10x that size.
#   * gap = mean over semantic conditions - mean over syntactic conditions, each condition
#     (task) weighted equally; multi-task conditions are their own conditions and are left out
#     of the category means unless `include_multitask`.
#   * Bootstrap replicate = resample the seeds of each rung x condition cell with replacement,
#     then the test examples of each language. By default (`example_resampling="shared"`) one
#     example draw per language is shared by every run in the replicate, because the runs are
#     crossed with the same test file; this keeps comparisons paired. "independent" draws
#     examples separately per run (exactly a binomial draw of each run's accuracy), which is
#     also the fallback for runs without predictions.
#   * Default CIs are conditional on the tasks chosen for each category; the slope table also
#     carries a CI that resamples tasks within each category (`ci_low_tasks`, `ci_high_tasks`).
#   * Verdict: the slope CI must exclude 0 and the sign of the gap over the ladder must be
#     resolved; "amplifies" when |gap| grows with size (slope has the gap's sign), "diminishes"
#     when it shrinks. For a positive gap this is exactly "slope CI above / below 0".

from __future__ import annotations

import math
import warnings
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from xstilts.analysis.collapse import CollapseConfig, flag_collapsed_runs
from xstilts.analysis.schema import (
    AVG_EXCL_EN,
    CATEGORIES,
    LANGUAGE_GROUPS,
    LANGUAGES,
    group_members,
    language_labels,
    multitask_map,
    validate_predictions,
    validate_results,
)

Verdict = Literal["amplifies", "diminishes", "inconclusive"]

SIZE_AXIS_NAMES: dict[str, str] = {
    "params_non_embedding": "non-embedding parameters",
    "params_total": "total parameters",
    "params_embedding": "embedding parameters",
    "layers": "layers",
}


@dataclass(frozen=True)
class AnalysisConfig:
    """Every knob of the analysis; the defaults are the ones the report states."""

    split: str = "test"
    n_boot: int = 2000
    seed: int = 0
    ci_level: float = 0.95
    target: str = AVG_EXCL_EN
    size_column: str = "params_non_embedding"
    include_multitask: bool = False
    multitask_conditions: tuple[str, ...] | None = None
    example_resampling: Literal["shared", "independent"] = "shared"
    regression: bool = True
    min_seeds: int = 2
    """A rung enters a ladder's slope only when it has every syntactic and semantic task of the
    ladder, each with at least min(min_seeds, the most seeds any such cell of the ladder has)
    seeds: the slope then compares the same tasks, each with seed variation, at every rung."""
    floor_rule: bool = True
    """Leave a rung out of its ladder's slope when it is at the floor: no condition there
    (the control, a task or a multi-task mix) learns the target in at least
    `floor_learned_share` of its runs, "learns" meaning not flagged by `detect_collapse`.
    Where nothing learns the target every gap is bounded by the majority rate, so such a rung
    would pull the slope towards "amplifies" without saying anything about transfer."""
    floor_learned_share: float = 0.5

    def __post_init__(self) -> None:
        if self.split not in ("dev", "test"):
            raise ValueError(f"split must be 'dev' or 'test', not {self.split!r}")
        if self.n_boot < 1:
            raise ValueError("n_boot must be at least 1")
        if not 0 < self.ci_level < 1:
            raise ValueError("ci_level must lie strictly between 0 and 1")
        if self.size_column not in SIZE_AXIS_NAMES:
            raise ValueError(f"size_column must be one of {sorted(SIZE_AXIS_NAMES)}")
        if self.example_resampling not in ("shared", "independent"):
            raise ValueError("example_resampling must be 'shared' or 'independent'")
        if self.min_seeds < 1:
            raise ValueError("min_seeds must be at least 1")
        if not 0 < self.floor_learned_share <= 1:
            raise ValueError("floor_learned_share must lie in (0, 1]")

    @property
    def size_axis(self) -> str:
        """Human name of the size axis, e.g. 'non-embedding parameters'."""
        return SIZE_AXIS_NAMES[self.size_column]


@dataclass(frozen=True)
class RegressionResult:
    """accuracy ~ category * log10(size) for one ladder: which model was fitted and the
    semantic-vs-syntactic × log10(size) interaction (fraction per decade)."""

    ladder: str
    lang: str
    method: Literal["mixed", "ols_cluster", "none"]
    formula: str
    coef: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    n_obs: int
    n_runs: int
    note: str
    scope: Literal["slope rungs", "all runs"] = "slope rungs"
    """"slope rungs": fitted on the rungs the slope uses (the same contrast as the verdict);
    "all runs": every run of the ladder, incl. rungs left out of the slope (a sensitivity check
    whose task mix may differ between rungs)."""
    models: tuple[str, ...] = ()
    """The rungs (model names) whose runs were fitted."""


@dataclass(frozen=True)
class LadderVerdict:
    """The answer for one ladder and one language label, with the numbers behind it."""

    ladder: str
    lang: str
    split: str
    verdict: Verdict
    gap_trend: Literal["increasing", "decreasing", "unclear"]
    slope: float
    slope_ci: tuple[float, float]
    slope_ci_tasks: tuple[float, float]
    mean_gap: float
    mean_gap_ci: tuple[float, float]
    n_rungs: int
    left_out: tuple[str, ...]
    """Rungs with results that the slope leaves out, each with why (AnalysisConfig.min_seeds)."""
    smallest: str | None
    smallest_size: float
    gap_smallest: float
    gap_smallest_ci: tuple[float, float]
    largest: str | None
    largest_size: float
    gap_largest: float
    gap_largest_ci: tuple[float, float]
    reasons: tuple[str, ...]
    text: str


@dataclass
class StudyStats:
    """Everything `analyze` computes. Tables are tidy; `lang` holds a language code or an
    average label such as "avg excl. en"."""

    config: AnalysisConfig
    cells: pd.DataFrame
    categories: pd.DataFrame
    gaps: pd.DataFrame
    slopes: pd.DataFrame
    verdicts: list[LadderVerdict]
    regressions: list[RegressionResult]
    labels: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def target(self) -> str:
        """The label the headline verdict uses: the configured target if present, else the
        widest average available."""
        return resolve_target(self.labels, self.config.target)

    def verdict(self, ladder: str, lang: str | None = None) -> LadderVerdict:
        """The verdict for one ladder (and label; the target by default)."""
        want = lang or self.target
        for v in self.verdicts:
            if v.ladder == ladder and v.lang == want:
                return v
        raise KeyError((ladder, want))

    def headline(self) -> list[LadderVerdict]:
        """One verdict per ladder, for the target label."""
        return [v for v in self.verdicts if v.lang == self.target]

    def verdict_table(self) -> pd.DataFrame:
        """All verdicts as a table (one row per ladder × label)."""
        rows = []
        for v in self.verdicts:
            rows.append(
                {
                    "ladder": v.ladder,
                    "lang": v.lang,
                    "verdict": v.verdict,
                    "gap_trend": v.gap_trend,
                    "slope": v.slope,
                    "ci_low": v.slope_ci[0],
                    "ci_high": v.slope_ci[1],
                    "n_rungs": v.n_rungs,
                    "left_out": " | ".join(v.left_out),
                    "gap_smallest": v.gap_smallest,
                    "gap_largest": v.gap_largest,
                    "reasons": "; ".join(v.reasons),
                }
            )
        return pd.DataFrame(rows)


def resolve_target(labels: list[str], target: str) -> str:
    """`target` if it is among `labels`, else the widest average (or first label) present."""
    if target in labels:
        return target
    for fallback in (AVG_EXCL_EN, *LANGUAGE_GROUPS, *LANGUAGES):
        if fallback in labels:
            return fallback
    return labels[0] if labels else target


def fmt_pp(x: float, signed: bool = True) -> str:
    """A fraction as percentage points, e.g. 0.0123 -> '+1.23'."""
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{100 * x:+.2f}" if signed else f"{100 * x:.2f}"


def fmt_ci(ci: tuple[float, float], signed: bool = True) -> str:
    """A CI in percentage points, e.g. '[+0.10, +2.30]' ('–' when undefined)."""
    if not all(v is not None and math.isfinite(v) for v in ci):
        return "–"
    return f"[{fmt_pp(ci[0], signed)}, {fmt_pp(ci[1], signed)}]"


def fmt_size(n: float) -> str:
    """A parameter count in short form, e.g. 22_700_000 -> '22.7M'."""
    if n is None or not math.isfinite(n):
        return "n/a"
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.3g}"


def _ci(reps: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile CI along the last axis, linear interpolation (numpy's default), ignoring
    NaN replicates; NaN where a row has no finite replicate. Vectorised over leading axes."""
    alpha = (1 - level) / 2
    reps = np.asarray(reps, dtype=float)
    if not np.isnan(reps).any():
        lo, hi = np.quantile(reps, [alpha, 1 - alpha], axis=-1)
        return lo, hi
    srt = np.sort(reps, axis=-1)  # NaN sort last
    n = np.isfinite(srt).sum(axis=-1)
    out = []
    for p in (alpha, 1 - alpha):
        pos = p * np.maximum(n - 1, 0)
        below = np.floor(pos).astype(int)[..., None]
        above = np.ceil(pos).astype(int)[..., None]
        frac = (pos - np.floor(pos))[..., None]
        v_lo = np.take_along_axis(srt, below, axis=-1)
        v_hi = np.take_along_axis(srt, above, axis=-1)
        q = (v_lo + frac * (v_hi - v_lo))[..., 0]
        out.append(np.where(n > 0, q, np.nan))
    return out[0], out[1]


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


def _example_counts(rng: np.random.Generator, n_boot: int, n: int) -> np.ndarray:
    """(n_boot, n) multinomial counts: how often each example is drawn in each replicate."""
    idx = rng.integers(0, n, size=(n_boot, n))
    flat = idx + (np.arange(n_boot) * n)[:, None]
    return np.bincount(flat.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(float)


def _times_t(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b.T; small products skip BLAS, whose thread start-up dominates them on a busy box."""
    if a.shape[0] * a.shape[1] * b.shape[0] <= 20_000_000:
        return np.einsum("rn,bn->rb", a, b)
    return a @ b.T


def accuracy_consistency(
    results: pd.DataFrame, predictions: pd.DataFrame, tol: float = 1e-6
) -> pd.DataFrame:
    """Compare each result row with the accuracy and count recomputed from its predictions.

    Returns one row per run × language × split that has predictions, with `consistent`."""
    res = validate_results(results)
    pred = validate_predictions(predictions)
    pred = pred.assign(correct=(pred["gold"] == pred["pred"]).astype(float))
    agg = (
        pred.groupby(["run_id", "lang", "split"], as_index=False)
        .agg(accuracy_predictions=("correct", "mean"), n_predictions=("correct", "size"))
        .merge(res[["run_id", "lang", "split", "accuracy", "n"]], how="left")
        .rename(columns={"accuracy": "accuracy_results", "n": "n_results"})
    )
    agg["consistent"] = (
        (agg["accuracy_results"] - agg["accuracy_predictions"]).abs().le(tol)
        & agg["n_results"].eq(agg["n_predictions"])
    ).to_numpy()
    return agg


@dataclass
class _Replicates:
    runs: pd.DataFrame
    labels: list[str]
    point: np.ndarray  # (R, L)
    reps: np.ndarray  # (R, L, B)
    notes: list[str]


def _run_replicates(
    res: pd.DataFrame,
    pred: pd.DataFrame | None,
    cfg: AnalysisConfig,
    rng: np.random.Generator,
) -> _Replicates:
    runs = res.drop_duplicates("run_id")[["run_id", "model", "condition", "category", "seed"]]
    runs = runs.sort_values("run_id").reset_index(drop=True)
    run_index = pd.Index(runs["run_id"])
    langs = [lab for lab in language_labels(res["lang"]) if lab not in LANGUAGE_GROUPS]
    labels = language_labels(langs)
    n_runs, n_boot = len(runs), cfg.n_boot
    point = np.full((n_runs, len(labels)), np.nan)
    reps = np.full((n_runs, len(labels), n_boot), np.nan)
    acc_tab = res.pivot(index="run_id", columns="lang", values="accuracy").reindex(run_index)
    n_tab = res.pivot(index="run_id", columns="lang", values="n").reindex(run_index)
    preds_by_lang: dict[str, pd.DataFrame] = {}
    if pred is not None and cfg.example_resampling == "shared":
        sub = pred[(pred["split"] == cfg.split) & pred["run_id"].isin(run_index)]
        preds_by_lang = {str(k): v for k, v in sub.groupby("lang", sort=True)}
    unpaired = 0
    for j, lang in enumerate(langs):
        acc = acc_tab[lang].to_numpy(dtype=float)
        have = np.isfinite(acc)
        point[:, j] = acc
        covered = np.zeros(n_runs, dtype=bool)
        p = preds_by_lang.get(lang)
        if p is not None and len(p):
            rows = run_index.get_indexer(p["run_id"])
            ex_codes, uniques = pd.factorize(p["example_id"])
            correct = np.zeros((n_runs, len(uniques)))
            mask = np.zeros((n_runs, len(uniques)))
            correct[rows, ex_codes] = (p["gold"].to_numpy() == p["pred"].to_numpy()).astype(float)
            mask[rows, ex_codes] = 1.0
            counts = _example_counts(rng, n_boot, len(uniques))
            with np.errstate(invalid="ignore", divide="ignore"):
                acc_b = _times_t(correct, counts) / _times_t(mask, counts)
            covered = mask.any(axis=1) & have
            reps[covered, j, :] = acc_b[covered]
        rest = have & ~covered
        if rest.any():
            n = n_tab[lang].to_numpy(dtype=float)[rest]
            draws = rng.binomial(
                n.astype(np.int64)[:, None], acc[rest][:, None], (rest.sum(), n_boot)
            )
            reps[rest, j, :] = draws / n[:, None]
            unpaired += int(rest.sum())
    for g, label in enumerate(labels[len(langs) :], start=len(langs)):
        idx = [langs.index(m) for m in group_members(label, langs)]
        point[:, g] = point[:, idx].mean(axis=1)
        reps[:, g, :] = reps[:, idx, :].mean(axis=1)
    notes = []
    if unpaired and cfg.example_resampling == "shared":
        notes.append(
            f"{unpaired} run × language results had no predictions; their example-level "
            "resampling is an independent binomial draw (unpaired with the other runs)."
        )
    return _Replicates(runs=runs, labels=labels, point=point, reps=reps, notes=notes)


def _cells(res: pd.DataFrame, runs: pd.DataFrame, cfg: AnalysisConfig) -> pd.DataFrame:
    multi = multitask_map(res, cfg.multitask_conditions)
    keys = ["ladder", "model", "condition", "category"]
    members = res.drop_duplicates(["ladder", "run_id"])
    pos = pd.Index(runs["run_id"]).get_indexer(members["run_id"])
    size = members[cfg.size_column].to_numpy(dtype=float)
    layers = members["layers"].to_numpy()
    rows = []
    for key, idx in members.groupby(keys, sort=True).indices.items():
        ladder, model, condition, category = key
        sz = float(size[idx[0]])
        rows.append(
            {
                "ladder": str(ladder),
                "model": str(model),
                "size": sz,
                "log10_size": math.log10(sz) if sz > 0 else np.nan,
                "layers": int(layers[idx[0]]),
                "condition": str(condition),
                "category": str(category),
                "multitask": multi[str(condition)],
                "runs": pos[idx],
            }
        )
    cells = pd.DataFrame(rows)
    if cells.empty:
        raise ValueError(f"no results for split {cfg.split!r}")
    return cells.sort_values(["ladder", "size", "model", "category", "condition"]).reset_index(
        drop=True
    )


def _cell_replicates(
    cells: pd.DataFrame, rr: _Replicates, rng: np.random.Generator, n_boot: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_cells, n_labels = len(cells), len(rr.labels)
    point = np.full((n_cells, n_labels), np.nan)
    reps = np.full((n_cells, n_labels, n_boot), np.nan)
    n_seeds = np.zeros((n_cells, n_labels), dtype=int)
    b_idx = np.arange(n_boot)[:, None]
    for c, runs in enumerate(cells["runs"]):
        k = len(runs)
        point[c] = _nanmean(rr.point[runs], axis=0)
        n_seeds[c] = np.isfinite(rr.point[runs]).sum(axis=0)
        drawn = runs[rng.integers(0, k, size=(n_boot, k))]  # (B, k)
        vals = rr.reps[drawn, :, b_idx]  # (B, k, L)
        reps[c] = _nanmean(vals, axis=1).T
    return point, reps, n_seeds


def _included(cells: pd.DataFrame, cfg: AnalysisConfig) -> np.ndarray:
    return (~cells["multitask"].to_numpy(dtype=bool)) | cfg.include_multitask


def _rungs(cells: pd.DataFrame) -> pd.DataFrame:
    return (
        cells.drop_duplicates(["ladder", "model"])[
            ["ladder", "model", "size", "log10_size", "layers"]
        ]
        .sort_values(["ladder", "size", "model"])
        .reset_index(drop=True)
    )


def _incomplete_rungs(
    cells: pd.DataFrame,
    n_seeds: np.ndarray,
    rungs: pd.DataFrame,
    ladder: str,
    j: int,
    cfg: AnalysisConfig,
) -> dict[int, str]:
    """Rung index -> why it is left out of `ladder`'s slope for label `j`: a syntactic or
    semantic task of the ladder that it lacks, or has with fewer seeds than required."""
    inc = _included(cells, cfg) & (cells["ladder"] == ladder).to_numpy()
    inc &= cells["category"].isin(["syntactic", "semantic"]).to_numpy()
    have = inc & (n_seeds[:, j] > 0)
    if not have.any():
        return {}
    tasks = sorted(set(cells.loc[have, "condition"]))
    required = min(cfg.min_seeds, int(n_seeds[have, j].max()))
    out: dict[int, str] = {}
    for r in np.flatnonzero((rungs["ladder"] == ladder).to_numpy()):
        at = have & (cells["model"] == rungs.at[r, "model"]).to_numpy()
        if not at.any():
            continue  # no gap at this rung anyway
        seeds = dict(zip(cells.loc[at, "condition"], n_seeds[at, j], strict=True))
        missing = [t for t in tasks if t not in seeds]
        thin = [f"{t} ({seeds[t]} seed{'s' if seeds[t] != 1 else ''})" for t in tasks
                if t in seeds and seeds[t] < required]  # fmt: skip
        why = []
        if missing:
            why.append("no " + ", ".join(missing))
        if thin:
            why.append(f"fewer than {required} seeds: " + ", ".join(thin))
        if why:
            out[int(r)] = f"{rungs.at[r, 'model']}: " + "; ".join(why)
    return out


def _floor_rungs(
    flags: pd.DataFrame | None, rungs: pd.DataFrame, cfg: AnalysisConfig
) -> dict[int, str]:
    """Rung index -> why it is at the floor (`AnalysisConfig.floor_rule`): no condition
    learns the target in at least `floor_learned_share` of its runs."""
    if flags is None or flags.empty:
        return {}
    learned = ~flags["collapsed"].astype(bool)
    out: dict[int, str] = {}
    for r, (ladder, model) in enumerate(zip(rungs["ladder"], rungs["model"], strict=True)):
        at = ((flags["ladder"] == ladder) & (flags["model"] == model)).to_numpy()
        if not at.any():
            continue
        share = learned[at].groupby(flags.loc[at, "condition"]).mean()
        if (share >= cfg.floor_learned_share - 1e-12).any():
            continue
        out[r] = (
            f"at the floor: no condition learns the target in at least "
            f"{100 * cfg.floor_learned_share:g}% of its runs ({int((~learned[at]).sum())} of "
            f"{int(at.sum())} runs collapsed)"
        )
    return out


def _merge_why(
    incomplete: dict[int, str], floor: dict[int, str], rungs: pd.DataFrame
) -> dict[int, str]:
    """Left-out reasons per rung: "<model>: <what it lacks>; <at the floor>"."""
    out = dict(incomplete)
    for r, why in floor.items():
        out[r] = f"{out[r]}; {why}" if r in out else f"{rungs.at[r, 'model']}: {why}"
    return out


def _category_replicates(
    cells: pd.DataFrame,
    cell_point: np.ndarray,
    cell_reps: np.ndarray,
    rungs: pd.DataFrame,
    cfg: AnalysisConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rung, category, L) points, (rung, category, L, B) replicates, counts of conditions."""
    n_r, n_l, n_b = len(rungs), cell_point.shape[1], cell_reps.shape[2]
    point = np.full((n_r, len(CATEGORIES), n_l), np.nan)
    reps = np.full((n_r, len(CATEGORIES), n_l, n_b), np.nan)
    count = np.zeros((n_r, len(CATEGORIES), n_l), dtype=int)
    inc = _included(cells, cfg)
    for r, (ladder, model) in enumerate(zip(rungs["ladder"], rungs["model"], strict=True)):
        at = (cells["ladder"] == ladder).to_numpy() & (cells["model"] == model).to_numpy() & inc
        for k, cat in enumerate(CATEGORIES):
            sel = np.flatnonzero(at & (cells["category"] == cat).to_numpy())
            if len(sel) == 0:
                continue
            point[r, k] = _nanmean(cell_point[sel], axis=0)
            reps[r, k] = _nanmean(cell_reps[sel], axis=0)
            count[r, k] = np.isfinite(cell_point[sel]).sum(axis=0)
    return point, reps, count


def _task_resampled_gap(
    cells: pd.DataFrame,
    cell_reps: np.ndarray,
    rungs: pd.DataFrame,
    ladder: str,
    cfg: AnalysisConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """(rungs of ladder, L, B) gap replicates that also resample tasks within each category;
    one task draw per replicate is shared by every rung of the ladder."""
    lad = rungs[rungs["ladder"] == ladder]
    inc = _included(cells, cfg) & (cells["ladder"] == ladder).to_numpy()
    n_l, n_b = cell_reps.shape[1], cell_reps.shape[2]
    means = {}
    for cat in ("syntactic", "semantic"):
        conds = sorted(set(cells.loc[inc & (cells["category"] == cat).to_numpy(), "condition"]))
        out = np.full((len(lad), n_l, n_b), np.nan)
        if conds:
            m = len(conds)
            w = rng.multinomial(m, np.full(m, 1.0 / m), size=n_b).astype(float)  # (B, m)
            for r, model in enumerate(lad["model"]):
                vals = np.full((m, n_l, n_b), np.nan)
                for ci, cond in enumerate(conds):
                    hit = np.flatnonzero(
                        inc
                        & (cells["model"] == model).to_numpy()
                        & (cells["condition"] == cond).to_numpy()
                    )
                    if len(hit):
                        vals[ci] = cell_reps[hit[0]]
                fin = np.isfinite(vals)
                wt = w.T[:, None, :] * fin
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[r] = (np.where(fin, vals, 0.0) * wt).sum(axis=0) / wt.sum(axis=0)
        means[cat] = out
    return means["semantic"] - means["syntactic"]


def _slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """OLS slope of y on x along axis 0 (y: (n, ...)); NaN propagates."""
    xc = x - x.mean()
    return np.tensordot(xc, y, axes=(0, 0)) / float(np.sum(xc**2))


def analyze(
    results: pd.DataFrame,
    predictions: pd.DataFrame | None = None,
    config: AnalysisConfig | None = None,
    collapse_flags: pd.DataFrame | None = None,
) -> StudyStats:
    """Compute cell means, gains over `none`, category means, gaps, slopes, verdicts and (if
    `config.regression`) the mixed-model check, for `config.split`.

    `predictions` may be None: example-level resampling is then a binomial draw per run.
    `collapse_flags` (`detect_collapse`'s table) decide which rungs are at the floor
    (`AnalysisConfig.floor_rule`); without them they are detected with the default thresholds."""
    cfg = config or AnalysisConfig()
    res_all = validate_results(results)
    pred = validate_predictions(predictions) if predictions is not None else None
    if cfg.floor_rule and collapse_flags is None:
        collapse_flags = flag_collapsed_runs(res_all, pred, CollapseConfig())
    res = res_all[res_all["split"] == cfg.split]
    if res.empty:
        raise ValueError(f"results have no rows for split {cfg.split!r}")
    root = np.random.default_rng(cfg.seed)
    ex_rng, seed_rng, task_rng = root.spawn(3)
    rr = _run_replicates(res, pred, cfg, ex_rng)
    cells = _cells(res, rr.runs, cfg)
    cell_point, cell_reps, n_seeds = _cell_replicates(cells, rr, seed_rng, cfg.n_boot)
    rungs = _rungs(cells)
    labels = rr.labels
    level = cfg.ci_level

    # ---- cells and gains over the none control
    lo, hi = _ci(cell_reps, level)
    gain_point = np.full_like(cell_point, np.nan)
    gain_reps = np.full_like(cell_reps, np.nan)
    for idx in cells.groupby(["ladder", "model"]).groups.values():
        idx = np.asarray(idx)
        none = idx[(cells.loc[idx, "category"] == "none").to_numpy()]
        if len(none) == 0:
            continue
        base_p = _nanmean(cell_point[none], axis=0)
        base_r = _nanmean(cell_reps[none], axis=0)
        other = idx[(cells.loc[idx, "category"] != "none").to_numpy()]
        gain_point[other] = cell_point[other] - base_p
        gain_reps[other] = cell_reps[other] - base_r
    glo, ghi = _ci(gain_reps, level)
    cell_rows = []
    base_cols = ["ladder", "model", "size", "log10_size", "layers", "condition", "category"]
    for c, meta in enumerate(cells[[*base_cols, "multitask"]].itertuples(index=False)):
        for j, label in enumerate(labels):
            if not np.isfinite(cell_point[c, j]):
                continue
            cell_rows.append(
                {
                    **meta._asdict(),
                    "lang": label,
                    "n_seeds": int(n_seeds[c, j]),
                    "mean": cell_point[c, j],
                    "ci_low": lo[c, j],
                    "ci_high": hi[c, j],
                    "gain": gain_point[c, j],
                    "gain_ci_low": glo[c, j],
                    "gain_ci_high": ghi[c, j],
                }
            )
    cell_table = pd.DataFrame(cell_rows)

    # ---- category means and the gap per rung
    cat_point, cat_reps, cat_count = _category_replicates(cells, cell_point, cell_reps, rungs, cfg)
    clo, chi = _ci(cat_reps, level)
    cat_rows = []
    for r, rung in enumerate(rungs.itertuples(index=False)):
        for k, cat in enumerate(CATEGORIES):
            for j, label in enumerate(labels):
                if cat_count[r, k, j] == 0:
                    continue
                cat_rows.append(
                    {
                        **rung._asdict(),
                        "category": cat,
                        "lang": label,
                        "n_conditions": int(cat_count[r, k, j]),
                        "mean": cat_point[r, k, j],
                        "ci_low": clo[r, k, j],
                        "ci_high": chi[r, k, j],
                    }
                )
    cat_table = pd.DataFrame(cat_rows)
    syn, sem = CATEGORIES.index("syntactic"), CATEGORIES.index("semantic")
    gap_point = cat_point[:, sem] - cat_point[:, syn]  # (R, L)
    gap_reps = cat_reps[:, sem] - cat_reps[:, syn]  # (R, L, B)
    gap_lo, gap_hi = _ci(gap_reps, level)
    floor = _floor_rungs(collapse_flags, rungs, cfg) if cfg.floor_rule else {}
    left_out = {
        (ladder, j): _merge_why(
            _incomplete_rungs(cells, n_seeds, rungs, ladder, j, cfg), floor, rungs
        )
        for ladder in rungs["ladder"].unique()
        for j in range(len(labels))
    }
    gap_rows = []
    for r, rung in enumerate(rungs.itertuples(index=False)):
        for j, label in enumerate(labels):
            why_out = left_out[(rung.ladder, j)].get(r, "")
            gap_rows.append(
                {
                    **rung._asdict(),
                    "lang": label,
                    "semantic": cat_point[r, sem, j],
                    "syntactic": cat_point[r, syn, j],
                    "n_semantic": int(cat_count[r, sem, j]),
                    "n_syntactic": int(cat_count[r, syn, j]),
                    "gap": gap_point[r, j],
                    "ci_low": gap_lo[r, j],
                    "ci_high": gap_hi[r, j],
                    "in_slope": bool(np.isfinite(gap_point[r, j]) and not why_out),
                    "left_out_why": why_out,
                }
            )
    gap_table = pd.DataFrame(gap_rows)

    # ---- slope of the gap against log10(size), per ladder
    slope_rows = []
    verdicts: list[LadderVerdict] = []
    for ladder in sorted(rungs["ladder"].unique()):
        r_idx = np.flatnonzero((rungs["ladder"] == ladder).to_numpy())
        x_all = rungs["log10_size"].to_numpy()[r_idx]
        task_gap = _task_resampled_gap(cells, cell_reps, rungs, ladder, cfg, task_rng)
        lad_cells = cells[(cells["ladder"] == ladder).to_numpy() & _included(cells, cfg)]
        n_tasks = {
            cat: lad_cells.loc[lad_cells["category"] == cat, "condition"].nunique()
            for cat in ("syntactic", "semantic")
        }
        for j, label in enumerate(labels):
            out = left_out[(ladder, j)]
            complete = np.array([r not in out for r in r_idx], dtype=bool)
            valid = np.isfinite(gap_point[r_idx, j]) & np.isfinite(x_all) & complete
            rows_v = r_idx[valid]
            x = x_all[valid]
            row = {
                "ladder": ladder,
                "lang": label,
                "n_rungs": int(valid.sum()),
                "n_rungs_ladder": len(r_idx),
                "n_floor": sum(int(r) in floor for r in r_idx),
                "left_out": tuple(out[int(r)] for r in r_idx if r in out),
                "size_column": cfg.size_column,
                "slope": np.nan,
                "ci_low": np.nan,
                "ci_high": np.nan,
                "ci_low_tasks": np.nan,
                "ci_high_tasks": np.nan,
                "mean_gap": np.nan,
                "mean_gap_ci_low": np.nan,
                "mean_gap_ci_high": np.nan,
                "n_syntactic_tasks": n_tasks["syntactic"],
                "n_semantic_tasks": n_tasks["semantic"],
            }
            if valid.sum() >= 1:
                mg_reps = gap_reps[rows_v, j].mean(axis=0)
                row["mean_gap"] = float(gap_point[rows_v, j].mean())
                row["mean_gap_ci_low"], row["mean_gap_ci_high"] = map(float, _ci(mg_reps, level))
            if valid.sum() >= 2 and np.ptp(x) > 0:
                row["slope"] = float(_slope(x, gap_point[rows_v, j]))
                row["ci_low"], row["ci_high"] = map(
                    float, _ci(_slope(x, gap_reps[rows_v, j]), level)
                )
                t_reps = _slope(x, task_gap[valid, j])
                row["ci_low_tasks"], row["ci_high_tasks"] = map(float, _ci(t_reps, level))
            slope_rows.append(row)
            verdicts.append(_verdict(row, gap_table, cfg))
    slope_table = pd.DataFrame(slope_rows)

    regressions: list[RegressionResult] = []
    target = resolve_target(labels, cfg.target)
    if cfg.regression:
        t = labels.index(target)
        for ladder in sorted(rungs["ladder"].unique()):
            r_idx = np.flatnonzero((rungs["ladder"] == ladder).to_numpy())
            out = left_out[(ladder, t)]
            in_slope = [str(rungs["model"].iloc[r]) for r in r_idx if r not in out]
            regressions.append(
                fit_interaction(res_all, ladder, config=cfg, lang=target, models=in_slope)
            )
            if out:
                regressions.append(fit_interaction(res_all, ladder, config=cfg, lang=target))

    notes = _notes(cells, n_seeds, labels, rr, cfg, slope_table, target, res)
    return StudyStats(
        config=cfg,
        cells=cell_table,
        categories=cat_table,
        gaps=gap_table,
        slopes=slope_table,
        verdicts=verdicts,
        regressions=regressions,
        labels=labels,
        notes=notes,
    )


def _verdict(row: dict, gaps: pd.DataFrame, cfg: AnalysisConfig) -> LadderVerdict:
    ladder, label = row["ladder"], row["lang"]
    g = gaps[(gaps["ladder"] == ladder) & (gaps["lang"] == label) & gaps["in_slope"]]
    g = g.sort_values("size")
    slope, lo, hi = row["slope"], row["ci_low"], row["ci_high"]
    reasons: list[str] = []
    for cat in ("syntactic", "semantic"):
        if row[f"n_{cat}_tasks"] == 0:
            reasons.append(f"no {cat} tasks in this ladder")
    if row["n_floor"] and row["n_floor"] == row["n_rungs_ladder"]:
        reasons.append(
            "no rung learns the target: every rung is at the floor, where each condition scores "
            "about the majority rate"
        )
    if row["n_rungs"] < 2:
        what = "rung(s) in the slope" if row["left_out"] else "rung(s) with both categories"
        reasons.append(f"{row['n_rungs']} {what}; a slope needs at least 2")
    trend: Literal["increasing", "decreasing", "unclear"] = "unclear"
    if math.isfinite(lo) and math.isfinite(hi):
        if lo > 0:
            trend = "increasing"
        elif hi < 0:
            trend = "decreasing"
    elif not reasons:
        reasons.append("no sampling variability available for a CI")
    verdict: Verdict = "inconclusive"
    pct = f"{100 * cfg.ci_level:g}%"
    if not reasons:
        mlo, mhi = row["mean_gap_ci_low"], row["mean_gap_ci_high"]
        if trend == "unclear":
            reasons.append(f"the {pct} CI of the slope includes 0")
        elif mlo > 0 or mhi < 0:
            sign = 1.0 if mlo > 0 else -1.0
            verdict = "amplifies" if sign * slope > 0 else "diminishes"
        else:
            reasons.append(
                "the gap changes with size but its sign over the ladder is unresolved "
                "(the categories may cross over), so neither a growing nor a shrinking "
                "difference is established"
            )
    first = g.iloc[0] if len(g) else None
    last = g.iloc[-1] if len(g) else None

    def _at(r: pd.Series | None) -> tuple[str | None, float, float, tuple[float, float]]:
        if r is None:
            return None, np.nan, np.nan, (np.nan, np.nan)
        return str(r["model"]), float(r["size"]), float(r["gap"]), (r["ci_low"], r["ci_high"])

    s_model, s_size, s_gap, s_ci = _at(first)
    l_model, l_size, l_gap, l_ci = _at(last)
    crosses = (s_ci[0] > 0 and l_ci[1] < 0) or (s_ci[1] < 0 and l_ci[0] > 0)
    if verdict != "inconclusive" and crosses:
        reasons.append("note: the gap changes sign between the smallest and largest rung")
    size_axis = cfg.size_axis
    parts = [
        f"{ladder} [{label}, {cfg.split}]: {verdict.upper()}.",
        "Gap = semantic − syntactic accuracy.",
    ]
    if math.isfinite(slope):
        parts.append(
            f"Slope {fmt_pp(slope)} pp per 10× {size_axis} ({pct} CI {fmt_pp(lo)} to {fmt_pp(hi)};"
            f" resampling tasks too: {fmt_pp(row['ci_low_tasks'])} to "
            f"{fmt_pp(row['ci_high_tasks'])})."
        )
    if s_model is not None:
        parts.append(f"Gap {fmt_pp(s_gap)} pp {fmt_ci(s_ci)} at {s_model} ({fmt_size(s_size)})")
        if l_model is not None and l_model != s_model:
            parts[-1] += f" and {fmt_pp(l_gap)} pp {fmt_ci(l_ci)} at {l_model} ({fmt_size(l_size)})"
        parts[-1] += "."
    if reasons:
        parts.append(("Why: " if verdict == "inconclusive" else "") + "; ".join(reasons) + ".")
    if row["left_out"]:
        parts.append(
            "Left out of the slope (incomplete, or at the floor): "
            + " | ".join(row["left_out"])
            + "."
        )
    return LadderVerdict(
        ladder=ladder,
        lang=label,
        split=cfg.split,
        verdict=verdict,
        gap_trend=trend,
        slope=slope,
        slope_ci=(lo, hi),
        slope_ci_tasks=(row["ci_low_tasks"], row["ci_high_tasks"]),
        mean_gap=row["mean_gap"],
        mean_gap_ci=(row["mean_gap_ci_low"], row["mean_gap_ci_high"]),
        n_rungs=row["n_rungs"],
        left_out=tuple(row["left_out"]),
        smallest=s_model,
        smallest_size=s_size,
        gap_smallest=s_gap,
        gap_smallest_ci=s_ci,
        largest=l_model,
        largest_size=l_size,
        gap_largest=l_gap,
        gap_largest_ci=l_ci,
        reasons=tuple(reasons),
        text=" ".join(parts),
    )


def _notes(
    cells: pd.DataFrame,
    n_seeds: np.ndarray,
    labels: list[str],
    rr: _Replicates,
    cfg: AnalysisConfig,
    slopes: pd.DataFrame,
    target: str,
    res: pd.DataFrame,
) -> list[str]:
    notes = list(rr.notes)
    seeds = n_seeds[n_seeds > 0]
    if seeds.size and seeds.max() == 1:
        notes.append(
            "One seed per rung × condition: CIs reflect test-example sampling only, not "
            "training-seed variation."
        )
    elif seeds.size and seeds.min() < 5:
        k = int(seeds.min())
        notes.append(
            f"As few as {k} seeds per rung × condition: resampling {k} seeds understates "
            f"seed-to-seed variance (by about a factor {k - 1}/{k}), so CIs may be too narrow "
            "where seed variation dominates test-example variation."
        )
    if target != cfg.target:
        notes.append(f"Target {cfg.target!r} is not in the data; headline uses {target!r}.")
    langs = [lab for lab in labels if lab not in LANGUAGE_GROUPS]
    for label in labels:
        if label in LANGUAGE_GROUPS:
            have = group_members(label, langs)
            if set(have) != set(LANGUAGE_GROUPS[label]):
                notes.append(f"'{label}' averages only {', '.join(have)} (others absent).")
    other = sorted(set(cells["category"]) - set(CATEGORIES))
    if other:
        notes.append(
            f"Categories {', '.join(other)} are reported as their own conditions and are not "
            "part of the semantic − syntactic gap."
        )
    multi = sorted(set(cells.loc[cells["multitask"], "condition"]))
    if multi:
        how = "included in" if cfg.include_multitask else "kept separate from"
        notes.append(f"Multi-task conditions {', '.join(multi)} are {how} the category means.")
    tasks = slopes.drop_duplicates("ladder")
    for t in tasks.itertuples(index=False):
        notes.append(
            f"{t.ladder}: gap CIs are conditional on the {t.n_syntactic_tasks} syntactic and "
            f"{t.n_semantic_tasks} semantic tasks used; the slope table also gives a CI that "
            "resamples tasks."
        )
    return notes


def fit_interaction(
    results: pd.DataFrame,
    ladder: str,
    *,
    config: AnalysisConfig | None = None,
    lang: str | None = None,
    models: Collection[str] | None = None,
) -> RegressionResult:
    """Fit accuracy(pp) ~ category * log10(size) on the semantic and syntactic runs of one
    ladder; one row per run, its accuracy averaged over the languages of `lang` (a code or an
    average label; runs lacking one of them are left out). Category and size vary between
    runs only, so per-language rows would add no information on the interaction.

    `models` restricts the fit to those rungs (`analyze` passes the rungs its slope uses, so the
    check tests the same balanced contrast as the verdict; scope "slope rungs"); None fits every
    run of the ladder (scope "all runs").

    Mixed model (crossed random intercepts for condition and seed; a component estimated at 0
    is dropped and said) when there are ≥2 tasks per category and ≥2 seeds and it converges;
    else OLS with cluster-robust SEs by run (one row per run: heteroskedasticity-robust). The
    interaction is returned as a fraction per decade of size; log10(size) is centred."""
    import statsmodels.formula.api as smf

    cfg = config or AnalysisConfig()
    res = validate_results(results)
    res = res[(res["split"] == cfg.split) & (res["ladder"] == ladder)]
    scope: Literal["slope rungs", "all runs"] = "all runs" if models is None else "slope rungs"
    if models is not None:
        res = res[res["model"].isin(list(models))]
    label = lang or cfg.target
    all_langs = [lab for lab in language_labels(res["lang"]) if lab not in LANGUAGE_GROUPS]
    langs = group_members(label, all_langs)
    keep = res["category"].isin(["syntactic", "semantic"]) & res["lang"].isin(langs)
    if not cfg.include_multitask:
        keep &= ~res["condition"].map(multitask_map(res, cfg.multitask_conditions)).astype(bool)
    per_run = res[keep].groupby("run_id", sort=True)
    d = per_run[["condition", "category", "seed", cfg.size_column]].first()
    d["accuracy"] = per_run["accuracy"].mean()
    d["n_langs"] = per_run["lang"].nunique()
    incomplete = int((d["n_langs"] < len(langs)).sum())
    d = d[d["n_langs"] == len(langs)].reset_index()
    sizes = res.loc[res["run_id"].isin(d["run_id"])].groupby("model")[cfg.size_column].first()
    fitted = tuple(str(m) for m in sizes.sort_values().index)
    formula = "acc_pp ~ C(category, Treatment('syntactic')) * x"
    term = "C(category, Treatment('syntactic'))[T.semantic]:x"
    note = f"{incomplete} run(s) lacking a language left out; " if incomplete else ""

    def _none(why: str) -> RegressionResult:
        nan = float("nan")
        return RegressionResult(
            ladder,
            label,
            "none",
            formula,
            nan,
            nan,
            nan,
            nan,
            nan,
            len(d),
            len(d),
            note + why,
            scope,
            fitted,
        )

    if d.empty and models is not None:
        return _none("no rung in the slope (complete, and above the floor)")
    if d.empty or d["category"].nunique() < 2:
        return _none("needs runs of both categories")
    d["x"] = np.log10(d[cfg.size_column].astype(float))
    if d["x"].nunique() < 2:
        return _none("needs at least 2 rungs")
    d["x"] -= d["x"].mean()
    d["acc_pp"] = 100 * d["accuracy"]
    d["seed"] = d["seed"].astype(str)
    tasks_per_cat = d.groupby("category")["condition"].nunique()
    n_seeds = d["seed"].nunique()
    if tasks_per_cat.min() >= 2 and n_seeds >= 2:
        vc = {"condition": "0 + C(condition)", "seed": "0 + C(seed)"}
        fit, why = _fit_mixed(smf, formula, d, vc, term, cfg.ci_level)
        if fit is not None:
            return RegressionResult(
                ladder, label, "mixed", formula, *fit, len(d), len(d), note + why, scope, fitted
            )
        note += f"mixed model not used ({why}); "
    else:
        note += (
            f"mixed model not used ({tasks_per_cat.min()} task(s) in a category, {n_seeds} "
            "seed(s)); "
        )
    try:
        groups = np.arange(len(d))  # clusters = runs; one row per run
        ols = smf.ols(formula, d).fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
        coef, se = float(ols.params[term]), float(ols.bse[term])
        lo, hi = (float(v) for v in ols.conf_int(alpha=1 - cfg.ci_level).loc[term])
        p = float(ols.pvalues[term])
    except Exception as exc:  # singular design, too few runs
        return _none(f"OLS failed: {exc}")
    if not all(math.isfinite(v) for v in (coef, se, lo, hi, p)):
        return _none("OLS gave non-finite estimates (too few runs for the 4 coefficients?)")
    return RegressionResult(
        ladder,
        label,
        "ols_cluster",
        formula,
        coef / 100,
        se / 100,
        lo / 100,
        hi / 100,
        p,
        len(d),
        len(d),
        note + f"OLS, cluster-robust SEs over {len(d)} runs",
        scope,
        fitted,
    )


def _fit_mixed(
    smf: object, formula: str, d: pd.DataFrame, vc: dict[str, str], term: str, level: float
) -> tuple[tuple[float, float, float, float, float] | None, str]:
    """Fit the crossed-intercepts model; when the fit is singular (a variance component at 0
    makes the Hessian indefinite), drop the smallest component and refit, saying so."""
    import scipy.stats
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    vc = dict(vc)
    dropped: list[str] = []
    why = "no variance components left"
    while vc:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                model = smf.mixedlm(  # type: ignore[attr-defined]
                    formula, d, groups=np.ones(len(d)), re_formula="0", vc_formula=vc
                )
                fit = model.fit(reml=True, method=["powell", "lbfgs"])
            except Exception as exc:
                return None, f"fit failed: {exc}"
        messages = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
        hessian = any("Hessian" in m or "singular" in m.lower() for m in messages)
        coef, se, p = float(fit.params[term]), float(fit.bse[term]), float(fit.pvalues[term])
        finite = all(math.isfinite(v) for v in (coef, se, p)) and se > 0
        if fit.converged and not hessian and finite:
            z = float(scipy.stats.norm.ppf(0.5 + level / 2))
            why = "mixed model converged; random intercepts: " + ", ".join(vc)
            if dropped:
                why += f" (dropped {', '.join(dropped)}: variance estimated at 0)"
            return (coef / 100, se / 100, (coef - z * se) / 100, (coef + z * se) / 100, p), why
        why = (
            "did not converge"
            if not fit.converged
            else ("Hessian not positive definite" if hessian else "non-finite standard error")
        )
        names = list(getattr(model.exog_vc, "names", []))
        vcomp = np.asarray(getattr(fit, "vcomp", []), dtype=float)
        if len(names) != len(vc) or len(vcomp) != len(names) or not np.isfinite(vcomp).all():
            break
        smallest = names[int(np.argmin(vcomp))]
        dropped.append(smallest)
        del vc[smallest]
    return None, why
