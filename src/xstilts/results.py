"""Tidy results: one row per run × language × split, assembled from the stage summaries,
written as `results.csv`, `intermediate.csv`, `pretraining.csv` (the MLM log of every rung
xstilts pretrained) and `predictions/<run_id>.parquet`, and into the store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from xstilts.models.encoder_dir import PRETRAIN_LOG_FILENAME, read_provenance, source_record
from xstilts.pipeline import read_summary
from xstilts.plan import Plan, RunPlan
from xstilts.store import Store, atomic_copy, atomic_write_text

RESULT_COLUMNS = [
    "run_id", "ladder", "model", "source", "layers", "params_total", "params_embedding",
    "params_non_embedding", "hidden", "condition", "category", "tasks", "seed", "lang", "split",
    "accuracy", "n", "majority_rate", "ns_pairs", "pred_positive_rate", "en_dev_selected",
]  # fmt: skip


PRETRAINING_COLUMNS = [
    "ladder", "model", "step", "tokens", "loss", "eval_loss", "lr", "seconds",
    "unigram_eval_loss", "device",
]  # fmt: skip
"""`pretraining.csv`: one row per logged step of each rung's MLM pretraining; `unigram_eval_loss`
(the same on every row of a rung) is the held-out text's context-free reference
(`xstilts.models.pretrain.held_out_unigram_loss`), empty for rungs pretrained before it existed."""


@dataclass
class RunStatus:
    run: RunPlan
    status: str  # done | running | failed | pending
    detail: str = ""


def run_status(run: RunPlan, store: Store) -> RunStatus:
    if store.is_done(run.evaluate_key):
        return RunStatus(run, "done")
    records = store.stage_records(run.stage_keys)
    for key in run.stage_keys:
        rec = records.get(key)
        if rec is not None and rec.status == "failed":
            return RunStatus(
                run, "failed", f"{rec.label}: {(rec.error or '').strip().splitlines()[-1:]}"
            )
    for key in run.stage_keys:
        rec = records.get(key)
        if rec is not None and rec.status == "running":
            return RunStatus(run, "running", rec.label)
    return RunStatus(run, "pending")


def result_rows(run: RunPlan, store: Store) -> list[dict[str, Any]]:
    enc = read_summary(store.stage_dir(run.encoder_key))
    params = enc["params"]
    target = read_summary(store.stage_dir(run.target_key))
    evaluation = read_summary(store.stage_dir(run.evaluate_key))
    rows = []
    for m in evaluation["metrics"]:
        rows.append(
            {
                "run_id": run.run_id,
                "ladder": run.model.ladder,
                "model": run.model.name,
                "source": run.model.source,
                "layers": params["layers"],
                "params_total": params["total"],
                "params_embedding": params["embedding"],
                "params_non_embedding": params["non_embedding"],
                "hidden": params["hidden"],
                "condition": run.condition.name,
                "category": run.category,
                "tasks": "+".join(run.condition.task_names),
                "seed": run.seed,
                **m,
                "en_dev_selected": target["en_dev_accuracy"],
            }
        )
    return rows


def intermediate_rows(run: RunPlan, store: Store) -> list[dict[str, Any]]:
    """One row per task of the run's intermediate phase: its dev metric and the baseline."""
    if run.intermediate_key is None:
        return []
    s = read_summary(store.stage_dir(run.intermediate_key))
    return [
        {
            "run_id": run.run_id,
            "model": run.model.name,
            "condition": run.condition.name,
            "task": task,
            "category": t["category"],
            "seed": run.seed,
            "metric": t["metric"],
            "value": t["dev_metric"],
            "baseline": t["dev_baseline"],
            "dev_n": t["dev_n"],
            "train_examples": t["train_examples"],
            "budget_met": t["budget_met"],
        }
        for task, t in s["tasks"].items()
    ]


def pretraining_rows(plan: Plan, store: Store) -> list[dict[str, Any]]:
    """The pretraining log of every rung whose encoder stage is done and was pretrained here
    (its encoder directory holds `pretrain_log.csv`), in the study's rung order."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for run in plan.runs:
        if run.encoder_key in seen or not store.is_done(run.encoder_key):
            continue
        seen.add(run.encoder_key)
        encoder = store.stage_dir(run.encoder_key) / "encoder"
        log = encoder / PRETRAIN_LOG_FILENAME
        if not log.is_file():
            continue
        run_info = source_record(read_provenance(encoder), "pretraining").get("pretraining", {})
        frame = pd.read_csv(log)
        frame.insert(0, "model", run.model.name)
        frame.insert(0, "ladder", run.model.ladder)
        frame["unigram_eval_loss"] = run_info.get("unigram_eval_loss")
        frame["device"] = run_info.get("device")
        rows.extend(frame.reindex(columns=PRETRAINING_COLUMNS).to_dict("records"))
    return rows


def collect_results(plan: Plan, store: Store, out_dir: Path) -> pd.DataFrame:
    """Gather every finished run's rows, store them, and write the tidy files."""
    rows: list[dict[str, Any]] = []
    inter: list[dict[str, Any]] = []
    for run in plan.runs:
        if not store.is_done(run.evaluate_key):
            continue
        run_rows = result_rows(run, store)
        store.put_results(run_rows)
        rows.extend(run_rows)
        inter.extend(intermediate_rows(run, store))
        atomic_copy(
            store.stage_dir(run.evaluate_key) / "predictions.parquet",
            out_dir / "predictions" / f"{run.run_id}.parquet",
        )
    frame = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    atomic_write_text(out_dir / "results.csv", frame.to_csv(index=False))
    inter_frame = pd.DataFrame(inter)
    atomic_write_text(out_dir / "intermediate.csv", inter_frame.to_csv(index=False))
    pretraining = pd.DataFrame(pretraining_rows(plan, store), columns=PRETRAINING_COLUMNS)
    atomic_write_text(out_dir / "pretraining.csv", pretraining.to_csv(index=False))
    return frame


def wide_table(results: pd.DataFrame, split: str) -> pd.DataFrame:
    """One row per run: accuracy per language for one split, plus averages incl. and excl. en."""
    part = results[results["split"] == split]
    if part.empty:
        return pd.DataFrame()
    index = ["model", "condition", "category", "seed"]
    wide = part.pivot_table(index=index, columns="lang", values="accuracy", aggfunc="first")
    langs = [c for c in ("en", "de", "es", "fr", "ja", "ko", "zh") if c in wide.columns]
    wide = wide[langs]
    wide["avg (incl. en)"] = wide[langs].mean(axis=1)
    others = [c for c in langs if c != "en"]
    if others:
        wide["avg (excl. en)"] = wide[others].mean(axis=1)
    constant = part.groupby(index)["pred_positive_rate"].agg(
        lambda r: bool(((r <= 0.02) | (r >= 0.98)).all())
    )
    wide["constant predictions"] = constant.map({True: "yes (collapsed)", False: "no"})
    return wide.reset_index()
