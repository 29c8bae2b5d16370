"""Inference and metrics: logits for an encoded dataset in one length-sorted pass, task metrics,
and the zero-shot PAWS-X prediction rows (one per example) that every evaluated run keeps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from xstilts.batching import EncodedDataset, collate, inference_order
from xstilts.heads import IGNORE_INDEX, EncoderWithHead
from xstilts.train import pick_device


@torch.inference_mode()
def predict_logits(
    model: EncoderWithHead,
    data: EncodedDataset,
    *,
    task: str | None = None,
    batch_size: int,
    pad_id: int,
    precision: str = "bf16",
) -> list[np.ndarray]:
    """Per-example float32 logits in dataset order (classification: (C,), tagging: (T, C),
    multiple choice: (K,), span: (T, 2)), computed longest-first to minimise padding."""
    device = pick_device()
    model.to(device)
    model.eval()
    out: list[np.ndarray | None] = [None] * len(data)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    for indices in inference_order(data.lengths, batch_size):
        batch = collate(data, indices, pad_id)
        batch = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
        with autocast:
            _, logits = model(batch, task)
        logits_np = logits.float().cpu().numpy()
        for row, i in enumerate(indices):
            if data.head in ("tagging", "span"):
                out[i] = logits_np[row, : data.input_ids[i].shape[-1]]
            else:
                out[i] = logits_np[row]
    return [x for x in out if x is not None]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    return float(np.mean(pred == gold)) if len(gold) else float("nan")


def matthews_corrcoef(pred: np.ndarray, gold: np.ndarray) -> float:
    """Binary Matthews correlation; 0.0 when a row or column of the confusion matrix is empty."""
    tp = float(np.sum((pred == 1) & (gold == 1)))
    tn = float(np.sum((pred == 0) & (gold == 0)))
    fp = float(np.sum((pred == 1) & (gold == 0)))
    fn = float(np.sum((pred == 0) & (gold == 1)))
    denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return float((tp * tn - fp * fn) / denom) if denom > 0 else 0.0


def flat_predictions(data: EncodedDataset, logits: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """(pred, gold) over everything the task scores: one per example, or one per labelled word
    for tagging, or (start, end) pairs for spans."""
    if data.head == "tagging":
        preds, golds = [], []
        for lab, lg in zip(data.labels, logits, strict=True):
            lab = np.asarray(lab)
            keep = lab != IGNORE_INDEX
            preds.append(lg[: len(lab)].argmax(-1)[keep])
            golds.append(lab[keep])
        return np.concatenate(preds), np.concatenate(golds)
    if data.head == "span":
        pred = np.array([[lg[:, 0].argmax(), lg[:, 1].argmax()] for lg in logits])
        gold = np.asarray(data.labels, dtype=np.int64).reshape(-1, 2)
        return pred, gold
    pred = np.array([lg.argmax(-1) for lg in logits], dtype=np.int64)
    return pred, np.asarray(data.labels, dtype=np.int64)


def task_metric(name: str, data: EncodedDataset, logits: Sequence[np.ndarray]) -> float:
    """The named metric of a task on its dev set: accuracy, matthews or span_exact."""
    pred, gold = flat_predictions(data, logits)
    if name == "matthews":
        return matthews_corrcoef(pred, gold)
    if name == "span_exact":
        return float(np.mean(np.all(pred == gold, axis=1))) if len(gold) else float("nan")
    if name == "accuracy":
        # words that tokenised to no piece at all count as errors
        missed = int(data.meta.get("words_without_pieces", 0))
        correct = float(np.sum(pred == gold))
        return correct / (len(gold) + missed) if len(gold) + missed else float("nan")
    raise ValueError(f"unknown metric {name!r}; expected accuracy, matthews or span_exact")


def majority_baseline(name: str, data: EncodedDataset) -> float:
    """The metric a constant majority-label predictor gets (0 for Matthews and for spans)."""
    if name == "matthews":
        return 0.0
    labels: list[int] = []
    for lab in data.labels:
        arr = np.asarray(lab).reshape(-1)
        labels.extend(int(x) for x in arr if x != IGNORE_INDEX)
    if not labels or data.head == "span":
        return 0.0
    counts = np.bincount(np.asarray(labels))
    return float(counts.max() / counts.sum())
