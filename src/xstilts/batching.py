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


def mixing_weights(
    sizes: dict[str, int], sampling: str, temperature: float = 1.0
) -> dict[str, float]:
    """Probability of drawing each task's next batch (as in jiant): proportional to its size,
    to size^(1/T) ("temperature"), or uniform."""
    names = sorted(sizes)
    if sampling == "uniform":
        raw = np.ones(len(names))
    elif sampling == "proportional":
        raw = np.array([sizes[n] for n in names], dtype=float)
    elif sampling == "temperature":
        raw = np.array([sizes[n] for n in names], dtype=float) ** (1.0 / temperature)
    else:
        raise ValueError(
            f"unknown sampling {sampling!r}; expected proportional, temperature or uniform"
        )
    return dict(zip(names, (raw / raw.sum()).tolist(), strict=True))


@dataclass
class TaskMix:
    """The training data of a phase: one encoded dataset per task and how batches are drawn.

    An epoch has as many batches as all tasks together; with one task it is that task's
    `batch_order`. With several, each step's task is drawn from the mixing weights, and a
    task whose batches run out starts a fresh shuffled pass over its data."""

    datasets: dict[str, EncodedDataset]
    sampling: str = "proportional"
    temperature: float = 2.0

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets.values())

    def weights(self) -> dict[str, float]:
        return mixing_weights(
            {k: len(v) for k, v in self.datasets.items()}, self.sampling, self.temperature
        )

    def epoch_batches(self, batch_size: int, seed: int, epoch: int) -> list[tuple[str, np.ndarray]]:
        names = sorted(self.datasets)
        if len(names) == 1:
            data = self.datasets[names[0]]
            return [(names[0], b) for b in batch_order(data.lengths, batch_size, seed, epoch)]
        weights = self.weights()
        passes = {n: 0 for n in names}
        queues: dict[str, list[np.ndarray]] = {n: [] for n in names}

        def next_batch(name: str) -> np.ndarray:
            if not queues[name]:
                sub_epoch = epoch * 1000 + passes[name]
                passes[name] += 1
                lengths = self.datasets[name].lengths
                queues[name] = batch_order(
                    lengths, batch_size, seed + 7919 * names.index(name), sub_epoch
                )
            return queues[name].pop(0)

        total = sum(-(-len(self.datasets[n]) // batch_size) for n in names)
        rng = np.random.default_rng([seed, epoch, 99])
        picks = rng.choice(len(names), size=total, p=[weights[n] for n in names])
        return [(names[i], next_batch(names[i])) for i in picks]

    def collate(self, task: str, indices: np.ndarray, pad_id: int) -> dict[str, torch.Tensor]:
        return collate(self.datasets[task], indices, pad_id)
