"""Task heads on top of any Hugging Face encoder, and the encoder+head model every phase trains.
The encoder is a plain `PreTrainedModel` whatever the head, so it is carried from phase to phase unchanged."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, get_args

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F
from transformers import AutoConfig, AutoModel, PreTrainedModel

from xstilts.study import Pooling

HeadKind = Literal["classification", "tagging", "multiple_choice", "span"]
POOLINGS: tuple[Pooling, ...] = get_args(Pooling)
IGNORE_INDEX = -100


def pool(
    hidden_states: torch.Tensor, attention_mask: torch.Tensor, pooling: Pooling
) -> torch.Tensor:
    """(batch, hidden) sequence vectors: the first position, or the mask-weighted mean."""
    if pooling == "first":
        return hidden_states[:, 0]
    if pooling == "mean":
        weights = attention_mask.to(hidden_states.dtype).unsqueeze(-1)
        return (hidden_states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    raise ValueError(f"unknown pooling {pooling!r} (known: {', '.join(POOLINGS)})")


class ClassificationHead(nn.Module):
    """Sentence(-pair) classification from the pooled sequence vector (`pooling`):
    dropout → dense → tanh → dropout → out."""

    def __init__(
        self, hidden: int, num_labels: int, dropout: float, pooling: Pooling = "first"
    ) -> None:
        super().__init__()
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, num_labels)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.dropout(pool(hidden_states, attention_mask, self.pooling))
        x = self.dropout(torch.tanh(self.dense(x)))
        return self.out(x)


class TaggingHead(nn.Module):
    """One label per token position (labels sit on each word's first sub-word)."""

    def __init__(
        self, hidden: int, num_labels: int, dropout: float, pooling: Pooling = "first"
    ) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, num_labels)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(hidden_states))


class MultipleChoiceHead(nn.Module):
    """Scores each (context, choice) sequence from its pooled vector; softmax over the choices."""

    def __init__(
        self, hidden: int, num_labels: int, dropout: float, pooling: Pooling = "first"
    ) -> None:
        super().__init__()
        self.scorer = ClassificationHead(hidden, 1, dropout, pooling)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.scorer(hidden_states, attention_mask).squeeze(-1)


class SpanHead(nn.Module):
    """Extractive QA: a start and an end logit per token."""

    def __init__(
        self, hidden: int, num_labels: int, dropout: float, pooling: Pooling = "first"
    ) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, 2)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(hidden_states))


HEADS: dict[str, type[nn.Module]] = {
    "classification": ClassificationHead,
    "tagging": TaggingHead,
    "multiple_choice": MultipleChoiceHead,
    "span": SpanHead,
}


class EncoderWithHead(nn.Module):
    """An encoder plus one head per task; `forward(batch, task)` returns (loss, logits).

    Single-task phases have one head; multi-task intermediate training has one per task,
    all sharing the encoder. Only the encoder is carried to the next phase. `pooling` is what
    the sequence-level heads read (`Pooling`)."""

    def __init__(
        self,
        encoder: PreTrainedModel,
        heads: Mapping[str, tuple[str, int]],
        dropout: float,
        pooling: Pooling = "first",
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r} (known: {', '.join(POOLINGS)})")
        self.encoder = encoder
        self.pooling = pooling
        self.kinds = {task: kind for task, (kind, _) in heads.items()}
        hidden = encoder.config.hidden_size
        self.heads = nn.ModuleDict(
            {task: HEADS[kind](hidden, n, dropout, pooling) for task, (kind, n) in heads.items()}
        )
        self.default_task = next(iter(heads))

    def forward(
        self, batch: dict[str, torch.Tensor], task: str | None = None
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        task = task or self.default_task
        kind = self.kinds[task]
        input_ids = batch["input_ids"]
        attention_mask = batch["attention_mask"]
        n_choices = 0
        if kind == "multiple_choice":
            n_choices = input_ids.shape[1]
            input_ids = input_ids.flatten(0, 1)
            attention_mask = attention_mask.flatten(0, 1)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits = self.heads[task](hidden, attention_mask)
        if kind == "multiple_choice":
            logits = logits.view(-1, n_choices)
        labels = batch.get("labels")
        if labels is None:
            return None, logits
        return head_loss(kind, logits, labels, batch), logits


def head_loss(
    kind: str, logits: torch.Tensor, labels: torch.Tensor, batch: dict[str, torch.Tensor]
) -> torch.Tensor:
    """Cross-entropy for each head kind (tagging ignores IGNORE_INDEX; spans average start/end)."""
    logits = logits.float()
    if kind == "span":
        start, end = logits.unbind(-1)
        return (
            F.cross_entropy(start, batch["start_positions"])
            + F.cross_entropy(end, batch["end_positions"])
        ) / 2
    if kind == "tagging":
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX
        )
    return F.cross_entropy(logits, labels)


def load_encoder(path: Path, dropout: float) -> PreTrainedModel:
    """Load an encoder directory (safetensors only) with the given dropout, no pooler."""
    config = AutoConfig.from_pretrained(path)
    for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        if hasattr(config, name):
            setattr(config, name, dropout)
    kwargs: dict[str, object] = {"config": config, "use_safetensors": True}
    if config.model_type in ("bert", "roberta", "xlm-roberta"):
        kwargs["add_pooling_layer"] = False
    return AutoModel.from_pretrained(path, **kwargs)


def save_state(module: nn.Module, path: Path) -> None:
    """Save a module's tensors as safetensors (contiguous copies; shared tensors kept once)."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, path)


def load_state(module: nn.Module, path: Path) -> None:
    module.load_state_dict(load_file(str(path)), strict=True)
