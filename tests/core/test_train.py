"""The training loop: it learns, it resumes bit for bit after a crash, and it stops on NaN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel

from xstilts.batching import EncodedDataset, TaskMix
from xstilts.heads import EncoderWithHead
from xstilts.study import PhaseHParams
from xstilts.train import TrainingDivergedError, total_optimizer_steps, train_model


def tiny_model(seed: int = 0) -> EncoderWithHead:
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64,
    )  # fmt: skip
    return EncoderWithHead(
        BertModel(cfg, add_pooling_layer=False), {"t": ("classification", 2)}, 0.1
    )


def toy_data(n: int = 40) -> TaskMix:
    """Label 1 iff token 7 occurs: learnable in a few steps."""
    rng = np.random.default_rng(0)
    ids, labels = [], []
    for i in range(n):
        body = rng.integers(8, 50, size=int(rng.integers(3, 10)))
        if i % 2:
            body[int(rng.integers(0, len(body)))] = 7
        ids.append(np.concatenate([[0], body, [2]]).astype(np.int32))
        labels.append(i % 2)
    return TaskMix({"t": EncodedDataset("classification", ids, labels, [str(i) for i in range(n)])})


HP = PhaseHParams(
    lr=5e-3, epochs=3, batch_size=8, precision="fp32", checkpoint_every=1, dropout=0.1
)


def test_total_steps() -> None:
    assert total_optimizer_steps(5, HP) == 15
    assert total_optimizer_steps(5, HP.model_copy(update={"grad_accum": 2})) == 9
    assert total_optimizer_steps(5, HP.model_copy(update={"max_steps": 4})) == 4


def test_loss_decreases(tmp_path: Path) -> None:
    model = tiny_model()
    losses: list[float] = []
    train_model(model, toy_data(), HP.model_copy(update={"epochs": 8}), 1, tmp_path, pad_id=1,
                on_step=lambda s, t, loss: losses.append(loss))  # fmt: skip
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


class Crash(Exception):
    pass


def test_resume_after_crash_is_bit_identical(tmp_path: Path) -> None:
    straight = tiny_model()
    train_model(straight, toy_data(), HP, 3, tmp_path / "a", pad_id=1)

    resumed = tiny_model()

    def crash_at_7(step: int, total: int, loss: float) -> None:
        if step == 7:
            raise Crash

    with pytest.raises(Crash):
        train_model(resumed, toy_data(), HP, 3, tmp_path / "b", pad_id=1, on_step=crash_at_7)
    fresh = tiny_model(seed=123)  # a new process would start from other weights
    out = train_model(fresh, toy_data(), HP, 3, tmp_path / "b", pad_id=1)
    assert out.steps == 15
    for (name, a), (_, b) in zip(
        straight.state_dict().items(), fresh.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_best_checkpoint_is_restored(tmp_path: Path) -> None:
    model = tiny_model()
    scores = iter([0.5, 0.9, 0.1])
    seen: dict[str, torch.Tensor] = {}

    def evaluate(m: EncoderWithHead) -> float:
        score = next(scores)
        if score == 0.9:
            seen["w"] = m.heads["t"].out.weight.detach().clone()
        return score

    out = train_model(model, toy_data(), HP.model_copy(update={"eval_every": 5}), 1, tmp_path,
                      pad_id=1, evaluate=evaluate)  # fmt: skip
    assert out.best_metric == 0.9 and out.best_step == 10
    assert torch.equal(model.heads["t"].out.weight, seen["w"])


def test_nan_loss_stops_with_clear_error(tmp_path: Path) -> None:
    model = tiny_model()
    with torch.no_grad():
        model.heads["t"].out.weight.fill_(float("nan"))
    with pytest.raises(TrainingDivergedError, match="loss is nan at step 0"):
        train_model(model, toy_data(), HP, 1, tmp_path, pad_id=1)
