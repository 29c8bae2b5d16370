"""Parameter counts of an encoder, split the ways scaling analyses need: all embeddings vs the
rest, and word embeddings vs the rest, plus an exact hand formula for BERT-shaped encoders.

Definitions (by parameter name, each shared tensor counted once):

- `embedding`: every parameter with a name component containing "embeddings": word, position
  and token-type embeddings and the embedding LayerNorm (`embeddings.LayerNorm.*`); DeBERTa's
  relative-position table `encoder.rel_embeddings` counts too. `non_embedding` = total − this:
  the transformer layers plus any pooler (the Kaplan et al. 2020 notion).
- `word_embedding`: the input token-embedding matrix only (vocabulary × hidden).
  `non_word_embedding` = total − this: layers, pooler, position/type embeddings and the
  embedding LayerNorm. The shared README's figures for multilingual-e5-small
  (117.7M total; 96.0M word embeddings; 21.6M / 11.0M / 5.7M "non-embedding" for 12 / 6 / 3
  layers) are `total` and `non_word_embedding` of a Hugging Face `BertModel`, pooler included:
  the pooler exists in the module (randomly initialised when the checkpoint lacks it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts of one encoder; see the module docstring for the definitions."""

    total: int
    embedding: int
    non_embedding: int
    word_embedding: int
    non_word_embedding: int
    layers: int
    hidden: int

    def __post_init__(self) -> None:
        if self.embedding + self.non_embedding != self.total:
            raise ValueError(f"embedding + non_embedding != total in {self}")
        if self.word_embedding + self.non_word_embedding != self.total:
            raise ValueError(f"word_embedding + non_word_embedding != total in {self}")
        if not 0 <= self.word_embedding <= self.embedding:
            raise ValueError(f"word embeddings must be part of the embeddings in {self}")

    def to_json(self) -> dict[str, int]:
        """The counts as a plain dict, for result rows and summary files."""
        return asdict(self)

    @classmethod
    def from_parts(
        cls, total: int, embedding: int, word_embedding: int, layers: int, hidden: int
    ) -> ParamCounts:
        """Build the counts from the three measured sums; the complements are derived."""
        return cls(
            total=total,
            embedding=embedding,
            non_embedding=total - embedding,
            word_embedding=word_embedding,
            non_word_embedding=total - word_embedding,
            layers=layers,
            hidden=hidden,
        )


def is_embedding_parameter(name: str) -> bool:
    """True for a parameter whose dotted name has a component containing "embeddings"."""
    return any("embeddings" in part for part in name.split("."))


def _encoder_shape(model: torch.nn.Module) -> tuple[int, int]:
    config = getattr(model, "config", None)
    layers = getattr(config, "num_hidden_layers", None)
    hidden = getattr(config, "hidden_size", None)
    if layers is None or hidden is None:
        raise ValueError(
            f"{type(model).__name__} has no config with num_hidden_layers and hidden_size"
        )
    return int(layers), int(hidden)


def count_parameters(model: torch.nn.Module) -> ParamCounts:
    """Count `model`'s parameters (each shared tensor once); layers and hidden from its config.

    The word-embedding matrix is `model.get_input_embeddings().weight` when the model has it,
    else the parameter named `*word_embeddings.weight`.
    """
    layers, hidden = _encoder_shape(model)
    named = list(model.named_parameters())
    total = sum(p.numel() for _, p in named)
    embedding = sum(p.numel() for name, p in named if is_embedding_parameter(name))
    word: torch.nn.Parameter | None = None
    get_input = getattr(model, "get_input_embeddings", None)
    if callable(get_input):
        module = get_input()
        word = getattr(module, "weight", None)
    if word is None:
        candidates = [p for name, p in named if name.endswith("word_embeddings.weight")]
        if len(candidates) != 1:
            raise ValueError(f"cannot tell the word embeddings of {type(model).__name__}")
        word = candidates[0]
    return ParamCounts.from_parts(total, embedding, word.numel(), layers, hidden)


def expected_bert_parameters(
    vocab: int,
    hidden: int,
    layers: int,
    ffn: int,
    positions: int,
    type_vocab: int,
    *,
    pooler: bool = True,
) -> ParamCounts:
    """The exact parameter counts of a Hugging Face `BertModel` of these sizes (pure formula).

    embeddings: vocab·h + positions·h + type_vocab·h + 2h (LayerNorm)
    one layer:  4(h² + h) (Q, K, V, attention output) + 2h (LayerNorm)
                + (h·ffn + ffn) + (ffn·h + h) (feed-forward) + 2h (LayerNorm)
    pooler:     h² + h (when `pooler`)
    """
    word = vocab * hidden
    embedding = word + positions * hidden + type_vocab * hidden + 2 * hidden
    per_layer = 4 * (hidden * hidden + hidden) + 2 * hidden
    per_layer += hidden * ffn + ffn + ffn * hidden + hidden + 2 * hidden
    pooled = hidden * hidden + hidden if pooler else 0
    total = embedding + layers * per_layer + pooled
    return ParamCounts.from_parts(total, embedding, word, layers, hidden)
