"""Encoded datasets, length-bucketed batch orders and dynamic-padding collation.
Pure functions over numpy arrays: the same (seed, epoch) always gives the same batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from xstilts.heads import IGNORE_INDEX


@dataclass
class EncodedDataset:
    """Token ids per example (1-D, or 2-D `choices × tokens` for multiple choice) and targets.

    `labels[i]` is an int (classification, multiple choice), an int array aligned with the tokens
    (tagging, IGNORE_INDEX where no label), or a (start, end) pair (span)."""

    head: str
    input_ids: list[np.ndarray]
    labels: list[Any]
    ids: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((a.shape[-1] for a in self.input_ids), dtype=np.int64, count=len(self))

    def subset(self, indices: Sequence[int]) -> EncodedDataset:
        return EncodedDataset(
            head=self.head,
            input_ids=[self.input_ids[i] for i in indices],
            labels=[self.labels[i] for i in indices],
            ids=[self.ids[i] for i in indices],
            meta=dict(self.meta),
        )


def batch_order(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, bucket_batches: int = 50
) -> list[np.ndarray]:
    """One epoch's batches: shuffle, sort by length inside windows of `bucket_batches` batches,
    cut into batches, shuffle the batches. Every example appears exactly once per epoch."""
    rng = np.random.default_rng([seed, epoch])
    perm = rng.permutation(len(lengths))
    window = batch_size * bucket_batches
    batches: list[np.ndarray] = []
    for start in range(0, len(perm), window):
        chunk = perm[start : start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def inference_order(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Batches of examples sorted by length (longest first), for padding-free inference."""
    idx = np.argsort(-lengths, kind="stable")
    return [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)]


def collate(dataset: EncodedDataset, indices: np.ndarray, pad_id: int) -> dict[str, torch.Tensor]:
    """Pad the chosen examples to the longest one in the batch; build masks and targets."""
    seqs = [dataset.input_ids[i] for i in indices]
    width = max(s.shape[-1] for s in seqs)
    if dataset.head == "multiple_choice":
        n_choices = seqs[0].shape[0]
        ids = np.full((len(seqs), n_choices, width), pad_id, dtype=np.int64)
        for row, s in enumerate(seqs):
            ids[row, :, : s.shape[-1]] = s
    else:
        ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
        for row, s in enumerate(seqs):
            ids[row, : s.shape[-1]] = s
    mask = np.zeros_like(ids)
    for row, s in enumerate(seqs):
        mask[row, ..., : s.shape[-1]] = 1
    if dataset.head == "multiple_choice":
        # pad rows of shorter choices too: a choice's own length is where its ids stop
        mask = (ids != pad_id).astype(np.int64)
        mask[..., 0] = 1
    batch = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
    labels = [dataset.labels[i] for i in indices]
    if dataset.head == "tagging":
        lab = np.full((len(seqs), width), IGNORE_INDEX, dtype=np.int64)
        for row, tags in enumerate(labels):
            lab[row, : len(tags)] = tags
        batch["labels"] = torch.from_numpy(lab)
    elif dataset.head == "span":
        spans = np.asarray(labels, dtype=np.int64).reshape(len(labels), 2)
        batch["labels"] = torch.from_numpy(spans)
        batch["start_positions"] = torch.from_numpy(spans[:, 0].copy())
        batch["end_positions"] = torch.from_numpy(spans[:, 1].copy())
    else:
        batch["labels"] = torch.tensor(labels, dtype=torch.long)
    return batch
