"""Batch orders and collation: every example once per epoch, deterministic, padded correctly."""

from __future__ import annotations

import numpy as np

from xstilts.batching import EncodedDataset, batch_order, collate, inference_order
from xstilts.heads import IGNORE_INDEX


def test_batch_order_covers_every_example_once_and_is_deterministic() -> None:
    lengths = np.random.default_rng(0).integers(5, 100, size=1003)
    for epoch in range(3):
        batches = batch_order(lengths, 32, seed=7, epoch=epoch)
        flat = np.concatenate(batches)
        assert sorted(flat.tolist()) == list(range(1003))
        again = batch_order(lengths, 32, seed=7, epoch=epoch)
        assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    e0 = np.concatenate(batch_order(lengths, 32, 7, 0))
    e1 = np.concatenate(batch_order(lengths, 32, 7, 1))
    assert not np.array_equal(e0, e1)


def test_bucketing_reduces_padding() -> None:
    lengths = np.random.default_rng(1).integers(5, 200, size=2000)
    bucketed = batch_order(lengths, 32, seed=1, epoch=0)
    padded = sum(len(b) * lengths[b].max() for b in bucketed)
    rng = np.random.default_rng(2)
    perm = rng.permutation(2000)
    random_batches = [perm[i : i + 32] for i in range(0, 2000, 32)]
    padded_random = sum(len(b) * lengths[b].max() for b in random_batches)
    assert padded < 0.8 * padded_random


def test_inference_order_is_longest_first() -> None:
    lengths = np.array([3, 9, 1, 7])
    order = np.concatenate(inference_order(lengths, 3))
    assert order.tolist() == [1, 3, 0, 2]


def test_collate_classification_and_tagging() -> None:
    cls = EncodedDataset(
        "classification",
        [np.array([0, 5, 6, 2]), np.array([0, 7, 2])],
        [1, 0],
        ["a", "b"],
    )
    batch = collate(cls, np.array([0, 1]), pad_id=1)
    assert batch["input_ids"].tolist() == [[0, 5, 6, 2], [0, 7, 2, 1]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert batch["labels"].tolist() == [1, 0]
    tag = EncodedDataset(
        "tagging",
        [np.array([0, 5, 6, 2]), np.array([0, 7, 2])],
        [np.array([-100, 3, -100, -100]), np.array([-100, 4, -100])],
        ["a", "b"],
    )
    batch = collate(tag, np.array([1, 0]), pad_id=1)
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 4, IGNORE_INDEX, IGNORE_INDEX],
                                        [IGNORE_INDEX, 3, IGNORE_INDEX, IGNORE_INDEX]]  # fmt: skip


def test_collate_multiple_choice_masks_each_choice() -> None:
    mc = EncodedDataset(
        "multiple_choice",
        [np.array([[0, 5, 2, 1], [0, 5, 6, 2]]), np.array([[0, 2], [0, 2]])],
        [1, 0],
        ["a", "b"],
    )
    batch = collate(mc, np.array([0, 1]), pad_id=1)
    assert batch["input_ids"].shape == (2, 2, 4)
    assert batch["attention_mask"][0].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    assert batch["attention_mask"][1].tolist() == [[1, 1, 0, 0], [1, 1, 0, 0]]
