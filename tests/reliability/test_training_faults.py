"""Training faults: a CUDA out-of-memory error halves the per-device batch and doubles the
accumulation (same effective batch) and retries from the last optimizer step; a corrupt
checkpoint is detected by its checksums and never loaded."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import xstilts.train as train_mod
from xstilts.train import CorruptCheckpointError, train_model

_spec = importlib.util.spec_from_file_location(
    "core_test_train", Path(__file__).resolve().parents[1] / "core" / "test_train.py"
)
assert _spec and _spec.loader
core = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(core)
HP = core.HP


def no_dropout_model() -> torch.nn.Module:
    """core.tiny_model without dropout: splitting a batch then changes only float rounding."""
    from transformers import BertConfig, BertModel

    from xstilts.heads import EncoderWithHead

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    return EncoderWithHead(
        BertModel(cfg, add_pooling_layer=False), {"t": ("classification", 2)}, 0.0
    )


def test_fake_oom_halves_the_batch_and_keeps_the_effective_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    straight = no_dropout_model()
    out_a = train_model(straight, core.toy_data(), HP, 3, tmp_path / "a", pad_id=1)

    sizes: list[int] = []
    model = no_dropout_model()
    real_forward = type(model).forward

    def forward(self, batch, task):  # type: ignore[no-untyped-def]
        n = batch["input_ids"].shape[0]
        sizes.append(n)
        if n > 3:  # this "GPU" fits at most 3 examples
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")
        return real_forward(self, batch, task)

    monkeypatch.setattr(type(model), "forward", forward)
    with pytest.warns(UserWarning, match="CUDA out of memory at step 0"):
        out_b = train_model(model, core.toy_data(), HP, 3, tmp_path / "b", pad_id=1)
    assert out_b.steps == out_a.steps == 15
    assert out_b.examples_seen == out_a.examples_seen
    last_oom = max(i for i, n in enumerate(sizes) if n > 3)
    assert [n for n in sizes[: last_oom + 1] if n > 3] == [8, 4]  # 8 -> 2 x 4 -> 4 x 2
    assert max(sizes[last_oom + 1 :]) <= 3  # never again over the limit
    for (name, a), (_, b) in zip(
        straight.state_dict().items(), model.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)


def test_oom_with_single_example_batches_is_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = core.tiny_model()

    def forward(self, batch, task):  # type: ignore[no-untyped-def]
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")

    monkeypatch.setattr(type(model), "forward", forward)
    with pytest.raises(torch.cuda.OutOfMemoryError), pytest.warns(UserWarning):
        train_model(model, core.toy_data(), HP, 3, tmp_path, pad_id=1)


def _crash_at(step_no: int):  # type: ignore[no-untyped-def]
    def on_step(step: int, total: int, loss: float) -> None:
        if step == step_no:
            raise core.Crash

    return on_step


@pytest.mark.parametrize("victim", ["model.safetensors", "optimizer.safetensors", "state.json"])
def test_truncated_checkpoint_is_recomputed_not_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, victim: str
) -> None:
    straight = core.tiny_model()
    train_model(straight, core.toy_data(), HP, 3, tmp_path / "a", pad_id=1)

    with pytest.raises(core.Crash):
        train_model(core.tiny_model(), core.toy_data(), HP, 3, tmp_path / "b", pad_id=1,
                    on_step=_crash_at(7))  # fmt: skip
    path = tmp_path / "b" / "checkpoint" / victim
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a torn write
    loaded: list[str] = []
    real_load = train_mod._load_checkpoint
    monkeypatch.setattr(
        train_mod, "_load_checkpoint", lambda c, *a: loaded.append(str(c)) or real_load(c, *a)
    )
    again = core.tiny_model()  # same initial weights: a restart from scratch matches `straight`
    with pytest.warns(UserWarning, match="discarding corrupt checkpoint"):
        out = train_model(again, core.toy_data(), HP, 3, tmp_path / "b", pad_id=1)
    assert loaded == []
    assert out.steps == 15
    for (name, a), (_, b) in zip(
        straight.state_dict().items(), again.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_bit_flip_in_checkpoint_is_detected(tmp_path: Path) -> None:
    with pytest.raises(core.Crash):
        train_model(core.tiny_model(), core.toy_data(), HP, 3, tmp_path, pad_id=1,
                    on_step=_crash_at(5))  # fmt: skip
    path = tmp_path / "checkpoint" / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40  # same size, different content
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match=r"model\.safetensors: SHA-256 differs"):
        train_model(core.tiny_model(), core.toy_data(), HP, 3, tmp_path, pad_id=1)


def test_corrupt_best_weights_are_never_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}

    def evaluate(model: torch.nn.Module) -> float:
        calls["n"] += 1
        if calls["n"] == 3:  # after the best was saved: tear it
            best = tmp_path / "best.safetensors"
            best.write_bytes(best.read_bytes()[:100])
        return float(calls["n"] == 1)

    hp = HP.model_copy(update={"eval_every": 5})
    with pytest.raises(CorruptCheckpointError, match=r"best\.safetensors"):
        train_model(
            core.tiny_model(), core.toy_data(), hp, 3, tmp_path, pad_id=1, evaluate=evaluate
        )
    assert not (tmp_path / "best.safetensors").exists()
    assert not (tmp_path / "checkpoint").exists()
