"""What a task is: its spec (category, head, labels, metric, data), how it reads its examples,
and how examples become token ids. Task files subclass one of the four head-type bases below."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from transformers import PreTrainedTokenizerBase

from xstilts.batching import EncodedDataset
from xstilts.data.records import MultipleChoiceExample, PairExample, SpanExample, TaggedSentence
from xstilts.heads import IGNORE_INDEX

TaskCategory = Literal["syntactic", "semantic", "target"]
Split = Literal["train", "dev"]


@dataclass(frozen=True)
class TaskSpec:
    name: str
    category: TaskCategory
    head: Literal["classification", "tagging", "multiple_choice", "span"]
    labels: tuple[str, ...]
    metric: Literal["accuracy", "matthews", "span_exact"]
    description: str
    source: str
    hf_dataset: str | None = None


class Task(ABC):
    """A registered task. `files` names every file read (they enter the cache keys)."""

    spec: TaskSpec

    @abstractmethod
    def files(self, data_dir: Path) -> dict[str, Path]: ...

    @abstractmethod
    def examples(self, data_dir: Path, split: Split) -> Sequence[Any]: ...

    @abstractmethod
    def encode(
        self, examples: Sequence[Any], tokenizer: PreTrainedTokenizerBase, max_length: int
    ) -> EncodedDataset: ...

    @property
    def num_labels(self) -> int:
        return len(self.spec.labels)

    def with_data_labels(self, data_dir: Path) -> Task:
        """The task ready to train on `data_dir`: itself, unless its label set is built from the
        data (then a copy whose spec carries the labels; see tasks/ccg_supertag.py)."""
        return self


def holdout_split(
    examples: Sequence[Any], split: Split, dev_fraction: float, salt: str
) -> list[Any]:
    """Deterministic train/dev split of a file that is the only labelled data a task has:
    an example goes to dev when the hash of (salt, id) falls below `dev_fraction`."""

    def to_dev(ex: Any) -> bool:
        digest = hashlib.sha256(f"{salt}:{ex.id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < dev_fraction

    return [ex for ex in examples if to_dev(ex) == (split == "dev")]


def _ids(values: Sequence[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int32)


class ClassificationTask(Task):
    """Single sentences or sentence pairs with one class label."""

    def encode(
        self, examples: Sequence[PairExample], tokenizer: PreTrainedTokenizerBase, max_length: int
    ) -> EncodedDataset:
        firsts = [ex.text_a for ex in examples]
        pairs = any(ex.text_b is not None for ex in examples)
        seconds = [ex.text_b or "" for ex in examples] if pairs else None
        enc = tokenizer(firsts, seconds, truncation=True, max_length=max_length)
        return EncodedDataset(
            head="classification",
            input_ids=[_ids(x) for x in enc["input_ids"]],
            labels=[ex.label for ex in examples],
            ids=[ex.id for ex in examples],
        )


class TaggingTask(Task):
    """One tag per word; the label sits on each word's first sub-word, other pieces are ignored.
    Alignment uses the fast tokenizer's `word_ids()`, so it is the same for every tokenizer family."""

    def encode(
        self,
        examples: Sequence[TaggedSentence],
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
    ) -> EncodedDataset:
        tag_ids = {t: i for i, t in enumerate(self.spec.labels)}
        enc = tokenizer(
            [list(ex.words) for ex in examples],
            is_split_into_words=True,
            truncation=True,
            max_length=max_length,
        )
        input_ids, labels = [], []
        without_pieces = truncated_words = 0
        for i, ex in enumerate(examples):
            word_ids = enc.word_ids(i)
            labels_i, seen = first_subword_labels(word_ids, [tag_ids[t] for t in ex.tags])
            without_pieces += sum(
                1 for w in range(len(ex.words)) if w not in seen and w <= max(seen, default=-1)
            )
            truncated_words += sum(1 for w in range(len(ex.words)) if w > max(seen, default=-1))
            input_ids.append(_ids(enc["input_ids"][i]))
            labels.append(labels_i)
        return EncodedDataset(
            head="tagging",
            input_ids=input_ids,
            labels=labels,
            ids=[ex.id for ex in examples],
            meta={"words_without_pieces": without_pieces, "words_truncated": truncated_words},
        )


def first_subword_labels(
    word_ids: Sequence[int | None], word_labels: Sequence[int]
) -> tuple[np.ndarray, set[int]]:
    """Label array aligned with the tokens: each word's label on its first piece, IGNORE_INDEX on
    special tokens and continuation pieces. Returns the labels and the set of words that got one."""
    out = np.full(len(word_ids), IGNORE_INDEX, dtype=np.int64)
    seen: set[int] = set()
    for pos, w in enumerate(word_ids):
        if w is None or w in seen:
            continue
        seen.add(w)
        out[pos] = word_labels[w]
    return out, seen


class MultipleChoiceTask(Task):
    """k candidate answers, each encoded as (context, question + answer); one gets the label."""

    def encode(
        self,
        examples: Sequence[MultipleChoiceExample],
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
    ) -> EncodedDataset:
        firsts, seconds = [], []
        for ex in examples:
            for choice in ex.choices:
                firsts.append(ex.context)
                seconds.append(f"{ex.question} {choice}".strip())
        enc = tokenizer(firsts, seconds, truncation="only_first", max_length=max_length)
        input_ids, pos = [], 0
        pad = tokenizer.pad_token_id
        for ex in examples:
            rows = enc["input_ids"][pos : pos + len(ex.choices)]
            pos += len(ex.choices)
            width = max(len(r) for r in rows)
            arr = np.full((len(rows), width), pad, dtype=np.int32)
            for j, r in enumerate(rows):
                arr[j, : len(r)] = r
            input_ids.append(arr)
        return EncodedDataset(
            head="multiple_choice",
            input_ids=input_ids,
            labels=[ex.label for ex in examples],
            ids=[ex.id for ex in examples],
        )


class SpanTask(Task):
    """Extractive QA: (question, context) with start/end token positions from character offsets.
    Answers cut off by truncation and unanswerable questions point at position 0 (`<s>`)."""

    def encode(
        self, examples: Sequence[SpanExample], tokenizer: PreTrainedTokenizerBase, max_length: int
    ) -> EncodedDataset:
        enc = tokenizer(
            [ex.question for ex in examples],
            [ex.context for ex in examples],
            truncation="only_second",
            max_length=max_length,
            return_offsets_mapping=True,
        )
        input_ids, labels = [], []
        for i, ex in enumerate(examples):
            seq_ids = enc.sequence_ids(i)
            offsets = enc["offset_mapping"][i]
            labels.append(answer_token_span(ex, seq_ids, offsets))
            input_ids.append(_ids(enc["input_ids"][i]))
        return EncodedDataset(
            head="span", input_ids=input_ids, labels=labels, ids=[ex.id for ex in examples]
        )


def answer_token_span(
    ex: SpanExample, seq_ids: Sequence[int | None], offsets: Sequence[tuple[int, int]]
) -> tuple[int, int]:
    """Token positions of the answer's first and last character in the context, or (0, 0)."""
    if ex.answer_start < 0:
        return (0, 0)
    start_char, end_char = ex.answer_start, ex.answer_start + len(ex.answer_text)
    start = end = None
    for pos, (sid, (a, b)) in enumerate(zip(seq_ids, offsets, strict=True)):
        if sid != 1:
            continue
        if start is None and a <= start_char < b:
            start = pos
        if a < end_char <= b:
            end = pos
    if start is None or end is None or end < start:
        return (0, 0)
    return (start, end)
