"""Detect collapsed runs: (nearly) constant predictions, or English dev accuracy no better
than the majority rate; per-run reasons, collapse rates, and tables with and without them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from xstilts.analysis.schema import validate_predictions, validate_results


@dataclass(frozen=True)
class CollapseConfig:
    """Thresholds: a run is collapsed if the modal prediction's share reaches
    `modal_threshold` (pooled over its dev and test predictions, or on English dev alone), or
    if English dev accuracy exceeds the majority rate by no more than `majority_margin`."""

    modal_threshold: float = 0.98
    majority_margin: float = 0.02
    splits: tuple[str, ...] = ("dev", "test")

    def __post_init__(self) -> None:
        if not 0.5 <= self.modal_threshold <= 1:
            raise ValueError("modal_threshold must lie in [0.5, 1]")
        if self.majority_margin < 0:
            raise ValueError("majority_margin must be non-negative")


FLAG_COLUMNS: tuple[str, ...] = (
    "run_id",
    "ladder",
    "model",
    "condition",
    "category",
    "seed",
    "modal_share",
    "modal_share_en_dev",
    "worst_lang_modal_share",
    "worst_lang",
    "en_dev_accuracy",
    "en_dev_majority_rate",
    "constant_predictions",
    "near_majority",
    "collapsed",
    "reasons",
)


def detect_collapse(
    results: pd.DataFrame,
    predictions: pd.DataFrame | None,
    config: CollapseConfig | None = None,
) -> pd.DataFrame:
    """One row per run: modal-prediction shares, English dev accuracy against the majority
    rate, boolean flags and a readable `reasons` string ("" when the run looks healthy).

    Without predictions for a run the constant-prediction check is skipped (NaN shares) and
    says so in `reasons`; without an English dev result the majority check is skipped."""
    pred = validate_predictions(predictions) if predictions is not None else None
    return flag_collapsed_runs(validate_results(results), pred, config or CollapseConfig())


def flag_collapsed_runs(
    res: pd.DataFrame, pred: pd.DataFrame | None, cfg: CollapseConfig
) -> pd.DataFrame:
    """`detect_collapse` on tables already validated (`validate_results`,
    `validate_predictions`), for callers that validated them for their own use."""
    meta = (
        res.drop_duplicates("run_id")[
            ["run_id", "ladder", "model", "condition", "category", "seed"]
        ]
        .sort_values("run_id")
        .set_index("run_id")
    )
    out = meta.copy()
    out["modal_share"] = np.nan
    out["modal_share_en_dev"] = np.nan
    out["worst_lang_modal_share"] = np.nan
    out["worst_lang"] = ""
    if pred is not None and len(pred):
        pred = pred[pred["split"].isin(cfg.splits) & pred["run_id"].isin(meta.index)]
        if len(pred):
            pooled = pred.groupby("run_id")["pred"].mean()
            out.loc[pooled.index, "modal_share"] = np.maximum(pooled, 1 - pooled)
            by_lang = pred.groupby(["run_id", "lang", "split"])["pred"].mean()
            share = np.maximum(by_lang, 1 - by_lang).rename("share").reset_index()
            worst = share.sort_values("share", ascending=False).drop_duplicates("run_id")
            worst = worst.set_index("run_id")
            out.loc[worst.index, "worst_lang_modal_share"] = worst["share"]
            out.loc[worst.index, "worst_lang"] = worst["lang"] + "/" + worst["split"]
            en_dev = share[(share["lang"] == "en") & (share["split"] == "dev")].set_index("run_id")
            out.loc[en_dev.index, "modal_share_en_dev"] = en_dev["share"]
    en = res[(res["lang"] == "en") & (res["split"] == "dev")].set_index("run_id")
    out["en_dev_accuracy"] = en["accuracy"].reindex(out.index)
    out["en_dev_majority_rate"] = en["majority_rate"].reindex(out.index)
    thr = cfg.modal_threshold
    const_pooled = out["modal_share"].ge(thr)
    const_en = out["modal_share_en_dev"].ge(thr)
    out["constant_predictions"] = (const_pooled | const_en).to_numpy()
    margin = out["en_dev_accuracy"] - out["en_dev_majority_rate"]
    out["near_majority"] = margin.le(cfg.majority_margin + 1e-12).to_numpy()
    out["collapsed"] = out["constant_predictions"] | out["near_majority"]
    reasons = []
    for rid, row in out.iterrows():
        why = []
        if const_pooled[rid]:
            why.append(f"modal prediction share {row['modal_share']:.3f} ≥ {thr:g} (dev+test)")
        elif const_en[rid]:
            why.append(
                f"modal prediction share on en dev {row['modal_share_en_dev']:.3f} ≥ {thr:g}"
            )
        if row["near_majority"]:
            why.append(
                f"en dev accuracy {100 * row['en_dev_accuracy']:.1f}% is within "
                f"{100 * cfg.majority_margin:g} pts of (or below) the majority rate "
                f"{100 * row['en_dev_majority_rate']:.1f}%"
            )
        if np.isnan(row["modal_share"]):
            why.append("no predictions: constant-prediction check skipped")
        if np.isnan(row["en_dev_accuracy"]):
            why.append("no en dev result: majority-rate check skipped")
        reasons.append("; ".join(why))
    out["reasons"] = reasons
    return out.reset_index()[list(FLAG_COLUMNS)]


def collapse_rate(flags: pd.DataFrame, by: tuple[str, ...] = ("condition",)) -> pd.DataFrame:
    """Share of collapsed runs per group (default per condition; e.g. ("ladder", "model",
    "condition") for a finer view), with counts."""
    keys = list(by)
    extra = ["category"] if "condition" in keys and "category" not in keys else []
    grp = flags.groupby(keys + extra, sort=True)
    out = grp.agg(n_runs=("run_id", "size"), n_collapsed=("collapsed", "sum")).reset_index()
    out["n_collapsed"] = out["n_collapsed"].astype(int)
    out["rate"] = out["n_collapsed"] / out["n_runs"]
    return out


def collapsed_run_ids(flags: pd.DataFrame) -> set[str]:
    """The run_ids flagged as collapsed."""
    return set(flags.loc[flags["collapsed"].astype(bool), "run_id"].astype(str))


def exclude_runs(table: pd.DataFrame, run_ids: set[str]) -> pd.DataFrame:
    """`table` (results or predictions: anything with run_id) without the runs in `run_ids`."""
    return table[~table["run_id"].astype(str).isin(run_ids)].copy()


def exclude_collapsed(table: pd.DataFrame, flags: pd.DataFrame) -> pd.DataFrame:
    """`table` (results or predictions: anything with run_id) without the collapsed runs."""
    return exclude_runs(table, collapsed_run_ids(flags))


def with_and_without(
    results: pd.DataFrame, flags: pd.DataFrame, split: str = "test"
) -> pd.DataFrame:
    """Mean accuracy over seeds per ladder × rung × condition × language, with all runs and
    without collapsed runs, side by side (`mean_all`, `n_all`, `mean_kept`, `n_kept`, `delta`)."""
    res = validate_results(results)
    res = res[res["split"] == split]
    keys = ["ladder", "model", "params_non_embedding", "condition", "category", "lang"]
    kept = exclude_collapsed(res, flags)
    a = res.groupby(keys).agg(mean_all=("accuracy", "mean"), n_all=("accuracy", "size"))
    k = kept.groupby(keys).agg(mean_kept=("accuracy", "mean"), n_kept=("accuracy", "size"))
    out = a.join(k, how="left").reset_index()
    out["n_kept"] = out["n_kept"].fillna(0).astype(int)
    out["delta"] = out["mean_kept"] - out["mean_all"]
    return out
