"""What each stage does: import an encoder, train on an intermediate task, fine-tune on English
PAWS-X with English-dev checkpoint selection, evaluate zero-shot. Each writes one artifact folder."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from xstilts.batching import EncodedDataset, TaskMix
from xstilts.data.overlap import OverlapReport, check_no_eval_overlap
from xstilts.data.pawsx import read_pawsx_tsv
from xstilts.data.records import MultipleChoiceExample, PairExample, SpanExample, TaggedSentence
from xstilts.evaluate import majority_baseline, predict_logits, softmax, task_metric
from xstilts.heads import POOLINGS, EncoderWithHead, load_encoder, load_state, save_state
from xstilts.models.params import count_parameters
from xstilts.models.sources import materialize_encoder
from xstilts.models.trim import trim_vocabulary
from xstilts.plan import Stage
from xstilts.store import atomic_write_json
from xstilts.study import Pooling, Study
from xstilts.tasks.registry import get_task
from xstilts.train import TrainOutcome, train_model

OnStep = Callable[[str, int, int, float], None]
"""Progress callback: (phase label, step, total, loss)."""

PREDICTION_COLUMNS = ("example_id", "lang", "split", "gold", "pred", "prob")
HEAD_CONFIG = "head.json"
"""Beside a target stage's `head.safetensors`: the head's kind, labels and pooling."""


def _tokenizer(path: Path) -> PreTrainedTokenizerBase:
    tok = AutoTokenizer.from_pretrained(path)
    if not tok.is_fast:
        raise TypeError(f"{path}: xstilts needs a fast tokenizer (word alignment, offsets)")
    return tok


def sample_budget(n: int, budget: int | None, seed: int) -> np.ndarray:
    """Indices of the examples a phase trains on: all of them, or `budget` drawn without
    replacement with a seeded generator (sorted, so the file order is kept)."""
    if budget is None or budget >= n:
        return np.arange(n)
    rng = np.random.default_rng([seed, n, budget])
    return np.sort(rng.choice(n, size=budget, replace=False))


def _subset(examples: Sequence[Any], limit: int | None, seed: int) -> list[Any]:
    return [examples[i] for i in sample_budget(len(examples), limit, seed)]


def _save_encoder(model: EncoderWithHead, tokenizer: PreTrainedTokenizerBase, out: Path) -> None:
    model.encoder.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


# -- stage: encoder -----------------------------------------------------------------------------
def example_texts(example: Any) -> list[str]:
    """The strings a task's `encode` hands to the tokenizer for one example (tagged words one by
    one, as `is_split_into_words` does), so a vocabulary kept from them encodes it identically."""
    if isinstance(example, PairExample):
        return [example.text_a] if example.text_b is None else [example.text_a, example.text_b]
    if isinstance(example, TaggedSentence):
        return list(example.words)
    if isinstance(example, MultipleChoiceExample):
        return [example.context, *(f"{example.question} {c}".strip() for c in example.choices)]
    if isinstance(example, SpanExample):
        return [example.question, example.context]
    raise TypeError(f"no text extraction for {type(example).__name__}")


def study_texts(stage: Stage, study: Study) -> Iterator[str]:
    """Every text the study will tokenize: the English training file, every PAWS-X evaluation file
    and the train/dev examples of every intermediate task."""
    data_dir = study.data_dir()
    for key, path in stage.paths.items():
        if key == "train" or key.startswith("eval:"):
            for ex in read_pawsx_tsv(path).examples:
                yield from example_texts(ex)
    for name in stage.spec["trim_vocab"]["tasks"]:
        task = get_task(name).with_data_labels(data_dir)
        for split in ("train", "dev"):
            for ex in task.examples(data_dir, split):
                yield from example_texts(ex)


def run_encoder_stage(stage: Stage, study: Study, work: Path, out: Path) -> dict[str, Any]:
    """Materialise the encoder (cut to `layers`); with `trim_vocab`, keep only the vocabulary of
    the study's data, checked to encode every one of those texts identically."""
    spec = stage.spec
    summary: dict[str, Any] = {}
    # a scratch rung's token budget as planned (the rung's pretrain_tokens or the preset's rule)
    tokens = spec["fingerprint"].get("tokens") if spec["source"] == "scratch" else None
    if spec.get("trim_vocab"):
        full = work / "untrimmed"
        if full.exists():
            shutil.rmtree(full)
        materialize_encoder(
            spec["source"],
            spec["path"],
            spec["layers"],
            full,
            data_dir=study.data_dir(),
            checkpoint_dir=work,  # a scratch rung's pretraining resumes from here
            tokens=tokens,
        )
        report = trim_vocabulary(full, study_texts(stage, study), out / "encoder")
        summary["trim"] = report.to_json()
        shutil.rmtree(full)
    else:
        materialize_encoder(
            spec["source"],
            spec["path"],
            spec["layers"],
            out / "encoder",
            data_dir=study.data_dir(),
            checkpoint_dir=work,
            tokens=tokens,
        )
    summary["params"] = count_parameters(load_encoder(out / "encoder", dropout=0.0)).to_json()
    atomic_write_json(out / "summary.json", summary)
    return summary


# -- stage: intermediate ------------------------------------------------------------------------
def budget_shares(budget: int, tasks: Sequence[str]) -> dict[str, int]:
    """Split an example budget equally between tasks (the first ones get the remainder)."""
    base, extra = divmod(budget, len(tasks))
    return {t: base + (1 if i < extra else 0) for i, t in enumerate(tasks)}


def run_intermediate_stage(
    stage: Stage, study: Study, upstream: Path, work: Path, out: Path, on_step: OnStep
) -> dict[str, Any]:
    """Train the encoder on one or more English tasks (each with its own head), keep the encoder."""
    spec = stage.spec
    hp = study.intermediate_for(spec.get("rung"))
    seed = int(spec["seed"])
    data_dir = study.data_dir()
    names: list[str] = list(spec["tasks"])
    tokenizer = _tokenizer(upstream / "encoder")
    shares = budget_shares(hp.budget_size, names) if hp.budget == "examples" else {}
    train_sets: dict[str, EncodedDataset] = {}
    dev_sets: dict[str, EncodedDataset] = {}
    used: dict[str, list[str]] = {}
    per_task: dict[str, dict[str, Any]] = {}
    tasks = {name: get_task(name).with_data_labels(data_dir) for name in names}
    for i, name in enumerate(names):
        task = tasks[name]
        available = task.examples(data_dir, "train")
        limit = shares.get(name, hp.max_train_examples)
        chosen = sample_budget(len(available), limit, seed + 1000 * i)
        train_sets[name] = task.encode([available[j] for j in chosen], tokenizer, hp.max_length)
        dev_sets[name] = task.encode(
            _subset(task.examples(data_dir, "dev"), hp.max_eval_examples, seed),
            tokenizer,
            hp.max_length,
        )
        used[name] = train_sets[name].ids
        per_task[name] = {
            "category": task.spec.category,
            "metric": task.spec.metric,
            "train_available": len(available),
            "train_examples": len(chosen),
            "budget_share": limit,
            "budget_met": limit is None or len(chosen) >= limit,
            "train_meta": train_sets[name].meta,
        }
    heads = {n: (tasks[n].spec.head, tasks[n].num_labels) for n in names}
    model = EncoderWithHead(
        load_encoder(upstream / "encoder", hp.dropout), heads, hp.dropout, hp.pooling
    )
    mix = TaskMix(train_sets, sampling=spec["sampling"], temperature=spec["temperature"])
    phase = hp.model_copy(update={"max_steps": hp.budget_size}) if hp.budget == "steps" else hp

    def dev_metrics(m: EncoderWithHead) -> dict[str, float]:
        out_metrics = {}
        for name, dev in dev_sets.items():
            logits = predict_logits(
                m, dev, task=name, batch_size=128, pad_id=tokenizer.pad_token_id
            )
            out_metrics[name] = task_metric(tasks[name].spec.metric, dev, logits)
        return out_metrics

    def mean_dev_metric(m: EncoderWithHead) -> float:
        return float(np.mean(list(dev_metrics(m).values())))

    outcome = train_model(
        model,
        mix,
        phase,
        seed,
        work,
        pad_id=tokenizer.pad_token_id,
        evaluate=mean_dev_metric if hp.eval_every else None,
        on_step=lambda s, t, loss: on_step(stage.label, s, t, loss),
    )
    final = dev_metrics(model)
    for name in names:
        per_task[name]["dev_metric"] = final[name]
        per_task[name]["dev_baseline"] = majority_baseline(tasks[name].spec.metric, dev_sets[name])
        per_task[name]["dev_n"] = len(dev_sets[name])
    _save_encoder(model, tokenizer, out / "encoder")
    summary = {
        "tasks": per_task,
        "budget": {"kind": hp.budget, "size": hp.budget_size},
        "mixing_weights": mix.weights(),
        "training": outcome.to_json(),
    }
    atomic_write_json(out / "summary.json", summary)
    atomic_write_json(out / "train_examples.json", used)
    return summary


# -- stage: target (English PAWS-X) -------------------------------------------------------------
def check_target_training_file(stage: Stage, max_fraction: float) -> OverlapReport:
    """Refuse an English training file that shares sentences with the evaluation sets (e.g.
    PAWS-Wiki dev, which contains the PAWS-X dev/test pairs). Cheap: run before any training."""
    paths = stage.paths
    eval_sets = {
        key.split(":", 1)[1]: read_pawsx_tsv(p).examples
        for key, p in paths.items()
        if key.startswith("overlap:")
    }
    train = read_pawsx_tsv(paths["train"]).examples
    return check_no_eval_overlap(paths["train"], train, eval_sets, max_fraction=max_fraction)


def run_target_stage(
    stage: Stage, study: Study, upstream: Path, work: Path, out: Path, on_step: OnStep
) -> dict[str, Any]:
    hp = study.target_for(stage.spec.get("rung"))
    seed = int(stage.spec["seed"])
    paths = stage.paths
    train_file = read_pawsx_tsv(paths["train"])
    overlap = check_target_training_file(stage, hp.max_eval_overlap)
    tokenizer = _tokenizer(upstream / "encoder")
    used = sample_budget(len(train_file.examples), hp.max_train_examples, seed)
    pawsx = get_task("pawsx")
    train = pawsx.encode([train_file.examples[i] for i in used], tokenizer, hp.max_length)
    en_dev_examples = read_pawsx_tsv(paths["en_dev"]).examples
    dev = pawsx.encode(
        _subset(en_dev_examples, hp.max_eval_examples, seed), tokenizer, hp.max_length
    )
    model = EncoderWithHead(
        load_encoder(upstream / "encoder", hp.dropout),
        {"pawsx": ("classification", 2)},
        hp.dropout,
        hp.pooling,
    )

    def en_dev_accuracy(m: EncoderWithHead) -> float:
        logits = predict_logits(m, dev, batch_size=128, pad_id=tokenizer.pad_token_id)
        return task_metric("accuracy", dev, logits)

    outcome: TrainOutcome = train_model(
        model,
        TaskMix({"pawsx": train}),
        hp,
        seed,
        work,
        pad_id=tokenizer.pad_token_id,
        evaluate=en_dev_accuracy,
        on_step=lambda s, t, loss: on_step(stage.label, s, t, loss),
    )
    _save_encoder(model, tokenizer, out / "encoder")
    save_state(model.heads["pawsx"], out / "head.safetensors")
    atomic_write_json(
        out / HEAD_CONFIG, {"kind": "classification", "labels": 2, "pooling": hp.pooling}
    )
    summary = {
        "selected_on": "en dev accuracy",
        "lr": hp.lr,
        "pooling": hp.pooling,
        "en_dev_accuracy": outcome.best_metric,
        "selected_step": outcome.best_step,
        "en_dev_n": len(dev),
        "train_examples": len(train),
        "train_available": len(train_file.examples),
        "train_ns_pairs": train_file.ns_pairs,
        "eval_overlap_fraction": overlap.fraction,
        "training": outcome.to_json(),
    }
    atomic_write_json(out / "summary.json", summary)
    atomic_write_json(out / "train_examples.json", {"ids": train.ids})
    return summary


# -- stage: evaluate ----------------------------------------------------------------------------
def load_target_model(target_dir: Path) -> tuple[EncoderWithHead, PreTrainedTokenizerBase]:
    """The fine-tuned PAWS model of a target stage's output; a stage written before
    `HEAD_CONFIG` existed read the first token."""
    config_path = target_dir / HEAD_CONFIG
    config = (
        json.loads(config_path.read_text(encoding="utf-8"))
        if config_path.exists()
        else {"pooling": "first"}
    )
    pooling = config.get("pooling")
    if pooling not in POOLINGS:
        raise ValueError(f"{config_path}: pooling {pooling!r} is not one of {list(POOLINGS)}")
    model = EncoderWithHead(
        load_encoder(target_dir / "encoder", 0.0),
        {"pawsx": ("classification", 2)},
        0.0,
        cast(Pooling, pooling),
    )
    load_state(model.heads["pawsx"], target_dir / "head.safetensors")
    return model, _tokenizer(target_dir / "encoder")


def run_evaluate_stage(
    stage: Stage, study: Study, upstream: Path, out: Path, on_file: Callable[[str], None]
) -> dict[str, Any]:
    """Zero-shot evaluation: every language's dev and test in one length-sorted pass per language."""
    settings = study.evaluation
    model, tokenizer = load_target_model(upstream)
    by_lang: dict[str, list[tuple[str, Path]]] = {}
    for key, path in stage.paths.items():
        lang, split = key.split("/")
        by_lang.setdefault(lang, []).append((split, path))
    frames, metrics = [], []
    for lang, files in sorted(by_lang.items()):
        examples: list[PairExample] = []
        splits: list[str] = []
        golds: list[int] = []
        ns_pairs: dict[str, int] = {}
        majority: dict[str, float] = {}
        for split, path in sorted(files):
            pf = read_pawsx_tsv(path)
            chosen = _subset(pf.examples, settings.max_examples_per_file, 0)
            examples.extend(chosen)
            splits.extend([split] * len(chosen))
            golds.extend(ex.label for ex in chosen)
            ns_pairs[split] = sum(1 for ex in chosen if "NS" in (ex.text_a, ex.text_b))
            counts = np.bincount([ex.label for ex in chosen], minlength=2)
            majority[split] = float(counts.max() / max(1, counts.sum()))
        data = get_task("pawsx").encode(examples, tokenizer, settings.max_length)
        logits = np.stack(
            predict_logits(
                model,
                data,
                batch_size=settings.batch_size,
                pad_id=tokenizer.pad_token_id,
                precision=settings.precision,
            )
        )
        prob = softmax(logits)[:, 1]
        frame = pd.DataFrame(
            {
                "example_id": data.ids,
                "lang": lang,
                "split": splits,
                "gold": np.asarray(golds, dtype=np.int8),
                "pred": logits.argmax(-1).astype(np.int8),
                "prob": prob.astype(np.float32),
            }
        )
        frames.append(frame)
        for split, part in frame.groupby("split", sort=True):
            metrics.append(
                {
                    "lang": lang,
                    "split": split,
                    "accuracy": float((part["gold"] == part["pred"]).mean()),
                    "n": len(part),
                    "majority_rate": majority[str(split)],
                    "ns_pairs": ns_pairs[str(split)],
                    "pred_positive_rate": float(part["pred"].mean()),
                }
            )
        on_file(lang)
    predictions = pd.concat(frames, ignore_index=True)
    predictions.to_parquet(out / "predictions.parquet", index=False)
    summary = {"metrics": metrics}
    atomic_write_json(out / "summary.json", summary)
    return summary


def read_summary(stage_dir: Path) -> dict[str, Any]:
    return json.loads((stage_dir / "summary.json").read_text())
