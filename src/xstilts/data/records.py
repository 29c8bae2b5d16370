"""Typed example records shared by readers, tasks and heads.
Readers produce these; tasks turn them into model inputs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PairExample:
    """A single sentence (text_b is None) or sentence pair with an integer class label.

    `label` is -1 when the file carries no label (unlabeled test sets)."""

    id: str
    text_a: str
    text_b: str | None
    label: int


@dataclass(frozen=True, slots=True)
class TaggedSentence:
    """One sentence as words with one tag per word (multiword tokens and empty nodes removed)."""

    id: str
    words: tuple[str, ...]
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MultipleChoiceExample:
    """A context, a question and k candidate answers; `label` is the index of the right one."""

    id: str
    context: str
    question: str
    choices: tuple[str, ...]
    label: int


@dataclass(frozen=True, slots=True)
class SpanExample:
    """Extractive QA: the answer is context[answer_start : answer_start + len(answer_text)].

    Unanswerable questions (SQuAD v2) have answer_start == -1 and answer_text == ""."""

    id: str
    context: str
    question: str
    answer_text: str
    answer_start: int
