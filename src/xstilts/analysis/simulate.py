"""Synthetic studies with known answers, in the exact results/predictions/intermediate schema.
Used by the tests and to preview the report without training anything."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from xstilts.analysis.schema import LANGUAGES

DEFAULT_LANG_OFFSETS: dict[str, float] = {
    "en": 0.10,
    "de": 0.02,
    "es": 0.03,
    "fr": 0.03,
    "ja": -0.05,
    "ko": -0.06,
    "zh": -0.04,
}


@dataclass
class SimulatedStudy:
    """The three tables plus the truth they were drawn from.

    `truth["p"]` maps (run_id, lang, split) to the true accuracy; `truth["gap"]` maps model to
    the true semantic − syntactic gap of the chosen tasks (same for every language);
    `truth["gap_slope"]` is the planted slope per decade of non-embedding parameters."""

    results: pd.DataFrame
    predictions: pd.DataFrame
    intermediate: pd.DataFrame
    truth: dict = field(default_factory=dict)


def simulate_study(
    *,
    ladder: str = "sim depth truncations",
    sizes: tuple[float, ...] = (1e7, 3e7, 1e8, 3e8),
    n_syntactic: int = 3,
    n_semantic: int = 3,
    n_seeds: int = 3,
    langs: tuple[str, ...] = LANGUAGES,
    n_test: int = 200,
    n_dev: int = 100,
    base: float = 0.70,
    size_effect: float = 0.03,
    gap: float = 0.02,
    gap_slope: float = 0.0,
    task_sd: float = 0.01,
    seed_sd: float = 0.01,
    task_rung_sd: float = 0.0,
    none_offset: float = -0.01,
    multitask: bool = False,
    majority: float = 0.55,
    lang_offsets: dict[str, float] | None = None,
    rng_seed: int = 0,
    model_prefix: str = "",
) -> SimulatedStudy:
    """Draw one ladder of `sizes` (non-embedding parameters) × conditions × seeds.

    True accuracy = base + size_effect·(x − x̄) ± gap(x)/2 (semantic +, syntactic −)
    + task effect + task × rung effect (`task_rung_sd`: a task that helps more at one size than
    another, which a slope cannot average away) + seed effect + language offset, with x = log10(size) and
    gap(x) = gap + gap_slope·(x − x̄); the `none` control sits at base + none_offset.
    Each example is answered correctly with that probability, independently. Models are
    named `<model_prefix>L<layers>` (a prefix keeps run ids unique when ladders are joined)."""
    rng = np.random.default_rng(rng_seed)
    offsets = DEFAULT_LANG_OFFSETS if lang_offsets is None else lang_offsets
    x = np.log10(np.asarray(sizes, dtype=float))
    xbar = float(x.mean())
    syn = [f"syn{k + 1}" for k in range(n_syntactic)]
    sem = [f"sem{k + 1}" for k in range(n_semantic)]
    conditions: list[tuple[str, str]] = [("none", "none")]
    conditions += [(c, "syntactic") for c in syn] + [(c, "semantic") for c in sem]
    if multitask:
        if syn:
            conditions.append(("all_syntactic", "syntactic"))
        if sem:
            conditions.append(("all_semantic", "semantic"))
    task_eff = {c: float(rng.normal(0, task_sd)) for c, _ in conditions}
    task_eff["none"] = 0.0
    emb = 12_000_000
    runs: list[dict[str, Any]] = []
    truth_gap: dict[str, float] = {}
    for i, size in enumerate(sizes):
        model = f"{model_prefix}L{3 * (i + 1)}"
        dx = float(x[i] - xbar)
        g = gap + gap_slope * dx
        rung_eff = {c: 0.0 for c, _ in conditions}
        if task_rung_sd > 0:  # drawn only when asked, so other settings keep their draws
            rung_eff.update(
                {c: float(rng.normal(0, task_rung_sd)) for c, k in conditions if k != "none"}
            )
        syn_mean = np.mean([task_eff[c] + rung_eff[c] for c in syn]) if syn else np.nan
        sem_mean = np.mean([task_eff[c] + rung_eff[c] for c in sem]) if sem else np.nan
        truth_gap[model] = float(g + sem_mean - syn_mean)
        for cond, cat in conditions:
            shift = {"none": none_offset, "syntactic": -g / 2, "semantic": g / 2}[cat]
            for s in range(n_seeds):
                runs.append(
                    {
                        "run_id": f"{model}__{cond}__s{s}",
                        "ladder": ladder,
                        "model": model,
                        "params_total": int(size) + emb,
                        "params_embedding": emb,
                        "params_non_embedding": int(size),
                        "layers": 3 * (i + 1),
                        "condition": cond,
                        "category": cat,
                        "seed": s,
                        "p_run": base
                        + size_effect * dx
                        + shift
                        + task_eff[cond]
                        + rung_eff[cond]
                        + float(rng.normal(0, seed_sd)),
                    }
                )
    run_df = pd.DataFrame(runs)
    n_runs = len(run_df)
    res_rows = []
    pred_parts = []
    truth_p: dict[tuple[str, str, str], float] = {}
    for lang in langs:
        for split, n in (("dev", n_dev), ("test", n_test)):
            if n <= 0:
                continue
            gold = (rng.random(n) >= majority).astype(np.int64)
            maj = max(gold.mean(), 1 - gold.mean())
            p = np.clip(run_df["p_run"].to_numpy() + offsets.get(lang, 0.0), 0.01, 0.99)
            correct = rng.random((n_runs, n)) < p[:, None]
            pred = np.where(correct, gold[None, :], 1 - gold[None, :])
            prob = np.where(
                pred == 1, 0.5 + 0.5 * rng.random(pred.shape), 0.5 * rng.random(pred.shape)
            )
            for i, rid in enumerate(run_df["run_id"]):
                truth_p[(rid, lang, split)] = float(p[i])
            acc = correct.mean(axis=1)
            block = run_df.drop(columns="p_run").assign(
                lang=lang, split=split, accuracy=acc, n=n, majority_rate=maj
            )
            res_rows.append(block)
            pred_parts.append(
                pd.DataFrame(
                    {
                        "run_id": np.repeat(run_df["run_id"].to_numpy(), n),
                        "lang": lang,
                        "split": split,
                        "example_id": np.tile([f"{split}-{k}" for k in range(n)], n_runs),
                        "gold": np.tile(gold, n_runs),
                        "pred": pred.ravel(),
                        "prob": prob.ravel(),
                    }
                )
            )
    results = pd.concat(res_rows, ignore_index=True)
    predictions = pd.concat(pred_parts, ignore_index=True)
    inter = []
    for r in runs:
        if r["category"] == "none":
            continue
        tasks = (
            (syn if r["condition"] == "all_syntactic" else sem)
            if r["condition"].startswith("all_")
            else [r["condition"]]
        )
        for t in tasks:
            inter.append(
                {
                    "model": r["model"],
                    "condition": r["condition"],
                    "task": t,
                    "seed": r["seed"],
                    "metric": "accuracy",
                    "value": float(
                        np.clip(
                            0.6
                            + 0.05 * math.log10(r["params_non_embedding"] / 1e6)
                            + rng.normal(0, 0.02),
                            0,
                            1,
                        )
                    ),
                    "baseline": 0.5,
                }
            )
    return SimulatedStudy(
        results=results,
        predictions=predictions,
        intermediate=pd.DataFrame(inter),
        truth={"p": truth_p, "gap": truth_gap, "gap_slope": gap_slope, "size_effect": size_effect},
    )


def plant_constant_predictor(study: SimulatedStudy, run_id: str, value: int = 0) -> SimulatedStudy:
    """Make one run predict `value` for every example (a collapsed model), updating both its
    predictions and its results accuracies; returns a new study."""
    pred = study.predictions.copy()
    sel = pred["run_id"] == run_id
    if not sel.any():
        raise KeyError(run_id)
    pred.loc[sel, "pred"] = value
    pred.loc[sel, "prob"] = 0.9 if value == 1 else 0.1
    acc = (
        pred[sel]
        .assign(c=lambda d: (d["gold"] == d["pred"]).astype(float))
        .groupby(["lang", "split"])["c"]
        .mean()
    )
    res = study.results.copy()
    rsel = res["run_id"] == run_id
    keys = list(zip(res.loc[rsel, "lang"], res.loc[rsel, "split"], strict=True))
    res.loc[rsel, "accuracy"] = [float(acc[k]) for k in keys]
    return SimulatedStudy(res, pred, study.intermediate.copy(), dict(study.truth))
