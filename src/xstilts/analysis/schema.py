"""Column contracts, language groups and condition helpers shared by the analysis modules.
Every table is checked here once, so the statistics never guess what a column means."""

from __future__ import annotations

from collections.abc import Collection, Iterable

import numpy as np
import pandas as pd

LANGUAGES: tuple[str, ...] = ("en", "de", "es", "fr", "ja", "ko", "zh")
EUROPEAN_LANGUAGES: tuple[str, ...] = ("de", "es", "fr")
DISTANT_LANGUAGES: tuple[str, ...] = ("ja", "ko", "zh")

AVG_INCL_EN = "avg incl. en"
AVG_EXCL_EN = "avg excl. en"
AVG_EUROPEAN = "avg European (de/es/fr)"
AVG_DISTANT = "avg distant (ja/ko/zh)"

LANGUAGE_GROUPS: dict[str, tuple[str, ...]] = {
    AVG_INCL_EN: LANGUAGES,
    AVG_EXCL_EN: LANGUAGES[1:],
    AVG_EUROPEAN: EUROPEAN_LANGUAGES,
    AVG_DISTANT: DISTANT_LANGUAGES,
}
"""Averages over languages (each language weighted equally); always reported under these labels."""

GROUP_BREAKDOWN: tuple[str, ...] = ("en", AVG_EUROPEAN, AVG_DISTANT)
"""The language-group breakdown: English, the European targets, the distant targets."""

CATEGORIES: tuple[str, ...] = ("none", "syntactic", "semantic")

RESULTS_COLUMNS: dict[str, str] = {
    "run_id": "str",
    "ladder": "str",
    "model": "str",
    "params_total": "int",
    "params_embedding": "int",
    "params_non_embedding": "int",
    "layers": "int",
    "condition": "str",
    "category": "str",
    "seed": "int",
    "lang": "str",
    "split": "str",
    "accuracy": "float",
    "n": "int",
    "majority_rate": "float",
}
PREDICTION_COLUMNS: dict[str, str] = {
    "run_id": "str",
    "lang": "str",
    "split": "str",
    "example_id": "str",
    "gold": "int",
    "pred": "int",
    "prob": "float",
}
INTERMEDIATE_COLUMNS: dict[str, str] = {
    "model": "str",
    "condition": "str",
    "task": "str",
    "seed": "int",
    "metric": "str",
    "value": "float",
    "baseline": "float",
}

RUN_COLUMNS: tuple[str, ...] = ("run_id", "model", "condition", "category", "seed")
"""Columns that must be constant within one run_id."""


def _coerce(df: pd.DataFrame, columns: dict[str, str], name: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} table lacks columns {missing}; has {list(df.columns)}")
    out = df.copy()
    for col, kind in columns.items():
        if kind == "str":
            out[col] = out[col].astype(str)
        elif kind == "int":
            values = pd.to_numeric(out[col], errors="raise")
            if values.isna().any():
                raise ValueError(f"{name}.{col} has missing values")
            out[col] = values.astype(np.int64)
        else:
            out[col] = pd.to_numeric(out[col], errors="raise").astype(float)
    return out


def validate_results(results: pd.DataFrame) -> pd.DataFrame:
    """Check the results table (one row per run × language × split) and return a typed copy.

    Raises ValueError naming the problem: missing columns, accuracy outside 0..1, duplicate
    (run_id, lang, split) rows, or run metadata that varies. Categories other than
    none/syntactic/semantic (e.g. "mixed") are allowed: they stay their own conditions and
    never enter the gap. Extra columns are kept."""
    out = _coerce(results, RESULTS_COLUMNS, "results")
    if (out["category"].str.strip() == "").any():
        raise ValueError("results.category has empty values")
    bad_split = sorted(set(out["split"]) - {"dev", "test"})
    if bad_split:
        raise ValueError(f"results.split has unknown values {bad_split}; expected dev/test")
    for col in ("accuracy", "majority_rate"):
        vals = out[col].to_numpy()
        if np.any(~np.isfinite(vals)) or np.any((vals < 0) | (vals > 1)):
            raise ValueError(f"results.{col} must be finite and within 0..1")
    if (out["n"] <= 0).any():
        raise ValueError("results.n must be positive")
    dup = out.duplicated(["run_id", "lang", "split"])
    if dup.any():
        first = out.loc[dup, ["run_id", "lang", "split"]].iloc[0].tolist()
        raise ValueError(f"results has duplicate rows for (run_id, lang, split) = {first}")
    per_run = out.drop_duplicates(list(RUN_COLUMNS))
    if per_run["run_id"].duplicated().any():
        rid = per_run.loc[per_run["run_id"].duplicated(), "run_id"].iloc[0]
        raise ValueError(f"run {rid!r} has more than one model/condition/category/seed")
    sizes = out.drop_duplicates(["ladder", "model", "params_non_embedding", "params_total"])
    if sizes.duplicated(["ladder", "model"]).any():
        raise ValueError("a (ladder, model) rung has more than one parameter count")
    return out


def validate_predictions(predictions: pd.DataFrame) -> pd.DataFrame:
    """Check the predictions table (one row per run × example) and return a typed copy."""
    out = _coerce(predictions, PREDICTION_COLUMNS, "predictions")
    for col in ("gold", "pred"):
        if not out[col].isin([0, 1]).all():
            raise ValueError(f"predictions.{col} must be 0 or 1")
    dup = out.duplicated(["run_id", "lang", "split", "example_id"])
    if dup.any():
        first = out.loc[dup, ["run_id", "lang", "split", "example_id"]].iloc[0].tolist()
        raise ValueError(f"predictions has duplicate rows for {first}")
    return out


def validate_intermediate(intermediate: pd.DataFrame) -> pd.DataFrame:
    """Check the intermediate-task metrics table and return a typed copy."""
    return _coerce(intermediate, INTERMEDIATE_COLUMNS, "intermediate")


def is_multitask(condition: str, multitask_conditions: Collection[str] | None = None) -> bool:
    """Whether a condition trains on several tasks at once.

    With an explicit list, membership decides; otherwise the naming convention does:
    names starting with "all_" or "multi", or joining tasks with "+"."""
    if multitask_conditions is not None:
        return condition in multitask_conditions
    return condition.startswith(("all_", "multi")) or "+" in condition


def multitask_map(
    results: pd.DataFrame, multitask_conditions: Collection[str] | None = None
) -> dict[str, bool]:
    """condition -> whether it is multi-task: the explicit list if given; else a `tasks`
    column joining several tasks with "+" (as the pipeline writes it), or the naming rule."""
    conds = [str(c) for c in results["condition"].unique()]
    if multitask_conditions is not None:
        return {c: c in multitask_conditions for c in conds}
    out = {c: is_multitask(c) for c in conds}
    if "tasks" in results.columns:
        joined = results.groupby(results["condition"].astype(str))["tasks"].agg(
            lambda t: any("+" in str(x) for x in t if isinstance(x, str))
        )
        for c, multi in joined.items():
            out[str(c)] = out[str(c)] or bool(multi)
    return out


def language_labels(langs: Iterable[str]) -> list[str]:
    """Per-language labels in canonical order (unknown codes last), then the group averages
    that have at least one language in the data."""
    present = list(dict.fromkeys(langs))
    ordered = [lang for lang in LANGUAGES if lang in present]
    ordered += sorted(lang for lang in present if lang not in LANGUAGES)
    groups = [g for g, members in LANGUAGE_GROUPS.items() if set(members) & set(present)]
    return ordered + groups


def group_members(label: str, langs: Iterable[str]) -> tuple[str, ...]:
    """The languages a label stands for, restricted to those present in the data."""
    present = set(langs)
    if label in LANGUAGE_GROUPS:
        return tuple(lang for lang in LANGUAGE_GROUPS[label] if lang in present)
    return (label,) if label in present else ()


LOWER_IS_BETTER = ("loss", "perplexity", "ppl", "error", "mse", "mae", "rmse", "wer", "cer")
"""Substrings of metric names where smaller is better (loss-like)."""


def lower_is_better(metrics: pd.Series) -> np.ndarray:
    """Per metric name: whether smaller values are better (loss-like), by `LOWER_IS_BETTER`."""
    low = metrics.str.lower().map(lambda m: any(k in m for k in LOWER_IS_BETTER))
    return low.to_numpy(dtype=bool)
