"""Heads: what a sequence-level head reads (first token or the mean over real tokens), and a
target stage's head coming back with the pooling it was trained with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel

from xstilts.heads import EncoderWithHead, pool, save_state
from xstilts.pipeline import HEAD_CONFIG, load_target_model


def test_pool_first_and_masked_mean() -> None:
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float32).view(2, 3, 2)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    torch.testing.assert_close(pool(hidden, mask, "first"), hidden[:, 0])
    expected = torch.stack([hidden[0].mean(0), hidden[1, :2].mean(0)])
    torch.testing.assert_close(pool(hidden, mask, "mean"), expected)
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        pool(hidden, mask, "max")  # type: ignore[arg-type]


def test_heads_read_what_pooling_says() -> None:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=40, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, max_position_embeddings=32, pad_token_id=1,
    )  # fmt: skip
    encoder = BertModel(config, add_pooling_layer=False)
    first = EncoderWithHead(encoder, {"c": ("classification", 2), "m": ("multiple_choice", 2)}, 0.0)
    mean = EncoderWithHead(
        encoder, {"c": ("classification", 2), "m": ("multiple_choice", 2)}, 0.0, "mean"
    )
    mean.heads.load_state_dict(first.heads.state_dict())
    ids = torch.tensor([[0, 5, 6, 7, 2], [0, 9, 2, 1, 1]])
    batch = {"input_ids": ids, "attention_mask": (ids != 1).long()}
    first.eval()
    mean.eval()
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
        _, a = first(batch, "c")
        _, b = mean(batch, "c")
        torch.testing.assert_close(
            a, first.heads["c"].out(torch.tanh(first.heads["c"].dense(hidden[:, 0])))
        )
        m = (hidden * batch["attention_mask"][..., None]).sum(1) / batch["attention_mask"].sum(
            1, keepdim=True
        )
        torch.testing.assert_close(b, mean.heads["c"].out(torch.tanh(mean.heads["c"].dense(m))))
        assert not torch.allclose(a, b)
        choices = {k: v[:, None].expand(-1, 2, -1) for k, v in batch.items()}
        _, mc = mean(choices, "m")
        assert mc.shape == (2, 2)
    with pytest.raises(ValueError, match="unknown pooling"):
        EncoderWithHead(encoder, {"c": ("classification", 2)}, 0.0, "cls")  # type: ignore[arg-type]


@pytest.mark.parametrize("pooling", [None, "first", "mean"])
def test_load_target_model_uses_the_pooling_it_was_trained_with(
    tmp_path: Path, pooling: str | None
) -> None:
    """`head.json` says how the head was trained; a stage from before it existed read the first
    token."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=40, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, max_position_embeddings=32, pad_token_id=1,
    )  # fmt: skip
    encoder = BertModel(config, add_pooling_layer=False)
    encoder.save_pretrained(tmp_path / "encoder", safe_serialization=True)
    vocab = {f"w{i}": i for i in range(40)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="w3"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="w1").save_pretrained(
        tmp_path / "encoder"
    )
    trained = EncoderWithHead(encoder, {"pawsx": ("classification", 2)}, 0.0, pooling or "first")  # type: ignore[arg-type]
    save_state(trained.heads["pawsx"], tmp_path / "head.safetensors")
    if pooling is not None:
        (tmp_path / HEAD_CONFIG).write_text(json.dumps({"pooling": pooling}))
    model, _ = load_target_model(tmp_path)
    assert model.pooling == (pooling or "first")
    ids = torch.tensor([[0, 5, 6, 2, 1]])
    batch = {"input_ids": ids, "attention_mask": (ids != 1).long()}
    trained.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(batch)[1], trained(batch)[1])
    (tmp_path / HEAD_CONFIG).write_text(json.dumps({"pooling": "max"}))
    with pytest.raises(ValueError, match=r"head\.json: pooling 'max' is not one of"):
        load_target_model(tmp_path)
