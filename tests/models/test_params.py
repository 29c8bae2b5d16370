"""Parameter counting: the module walk agrees exactly with the hand formula, and the formula
reproduces the shared README's multilingual-e5-small figures for 12, 6 and 3 layers."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

from xstilts.models.params import (
    ParamCounts,
    count_parameters,
    expected_bert_parameters,
    is_embedding_parameter,
)

E5_SMALL = {
    "vocab": 250037,
    "hidden": 384,
    "ffn": 1536,
    "positions": 512,
    "type_vocab": 2,
}


def e5_small_config(layers: int) -> BertConfig:
    return BertConfig(
        vocab_size=250037,
        hidden_size=384,
        num_hidden_layers=layers,
        num_attention_heads=12,
        intermediate_size=1536,
        max_position_embeddings=512,
        type_vocab_size=2,
    )


def test_e5_small_formula_exact_values() -> None:
    counts = expected_bert_parameters(layers=12, **E5_SMALL)
    assert counts == ParamCounts(
        total=117_653_760,
        embedding=96_212_352,
        non_embedding=21_441_408,
        word_embedding=96_014_208,
        non_word_embedding=21_639_552,
        layers=12,
        hidden=384,
    )
    no_pooler = expected_bert_parameters(layers=12, **E5_SMALL, pooler=False)
    assert counts.total - no_pooler.total == 384 * 384 + 384


@pytest.mark.parametrize(("layers", "readme_non_embedding"), [(12, 21.6), (6, 11.0), (3, 5.7)])
def test_formula_reproduces_the_readme_figures(layers: int, readme_non_embedding: float) -> None:
    counts = expected_bert_parameters(layers=layers, **E5_SMALL)
    # The README's "non-embedding" = total minus the word embeddings (pooler included).
    assert round(counts.non_word_embedding / 1e6, 1) == readme_non_embedding
    assert round(counts.word_embedding / 1e6, 1) == 96.0
    if layers == 12:
        assert round(counts.total / 1e6, 1) == 117.7


@pytest.mark.parametrize("layers", [12, 6, 3])
def test_count_equals_formula_for_e5_small_shapes(layers: int) -> None:
    with torch.device("meta"):
        model = BertModel(e5_small_config(layers))
    assert count_parameters(model) == expected_bert_parameters(layers=layers, **E5_SMALL)


@pytest.mark.parametrize("pooler", [True, False])
@pytest.mark.parametrize(
    ("vocab", "hidden", "layers", "ffn", "positions", "type_vocab"),
    [(50, 16, 1, 32, 8, 2), (97, 24, 3, 40, 20, 1), (10, 8, 2, 8, 4, 3)],
)
def test_count_equals_formula_for_small_bert_models(
    vocab: int, hidden: int, layers: int, ffn: int, positions: int, type_vocab: int, pooler: bool
) -> None:
    config = BertConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=ffn,
        max_position_embeddings=positions,
        type_vocab_size=type_vocab,
    )
    model = BertModel(config, add_pooling_layer=pooler)
    expected = expected_bert_parameters(
        vocab, hidden, layers, ffn, positions, type_vocab, pooler=pooler
    )
    assert count_parameters(model) == expected
    assert expected.total == sum(p.numel() for p in model.parameters())


def test_xlm_roberta_has_the_bert_parameter_structure() -> None:
    config = XLMRobertaConfig(
        vocab_size=120,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=34,
        type_vocab_size=1,
    )
    counts = count_parameters(XLMRobertaModel(config))
    assert counts == expected_bert_parameters(120, 32, 2, 48, 34, 1)


def test_embedding_parameter_names() -> None:
    assert is_embedding_parameter("embeddings.word_embeddings.weight")
    assert is_embedding_parameter("embeddings.LayerNorm.bias")
    assert is_embedding_parameter("bert.embeddings.position_embeddings.weight")
    assert is_embedding_parameter("encoder.rel_embeddings.weight")
    assert not is_embedding_parameter("encoder.layer.0.output.LayerNorm.weight")
    assert not is_embedding_parameter("pooler.dense.weight")


def test_counts_reject_inconsistent_parts() -> None:
    with pytest.raises(ValueError, match="non_embedding"):
        ParamCounts(10, 4, 5, 2, 8, 1, 4)
    with pytest.raises(ValueError, match="word embeddings must be part"):
        ParamCounts.from_parts(total=10, embedding=2, word_embedding=3, layers=1, hidden=4)


def test_counts_to_json_is_plain() -> None:
    counts = expected_bert_parameters(10, 8, 1, 16, 4, 2)
    row = counts.to_json()
    assert row["total"] == counts.total and set(row) == {
        "total",
        "embedding",
        "non_embedding",
        "word_embedding",
        "non_word_embedding",
        "layers",
        "hidden",
    }


def test_count_needs_a_config() -> None:
    with pytest.raises(ValueError, match="num_hidden_layers"):
        count_parameters(torch.nn.Embedding(3, 2))


def test_mbert_formula_matches_the_preset_note() -> None:
    counts = expected_bert_parameters(119547, 768, 12, 3072, 512, 2)
    assert counts.total == 177_853_440 and counts.word_embedding == 91_812_096
