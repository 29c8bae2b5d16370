"""Contamination check: how many training sentences also occur in evaluation sets.
Catches training on PAWS-Wiki dev, which holds the PAWS-X dev/test pairs, before a run starts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from xstilts.data.records import PairExample

# sentences that are not text and must not count as overlap
_PLACEHOLDERS = frozenset({"", "NS"})
_EXAMPLES_KEPT = 5
PAWS_WIKI_DEV_HINT = (
    "PAWS-Wiki dev contains the PAWS-X dev/test pairs, do not train on it"
    " (PAWS-Wiki test shares no sentence with them)"
)


class DataContaminationError(ValueError):
    """A training set shares too many sentences with an evaluation set."""


@dataclass(frozen=True, slots=True)
class OverlapReport:
    """Distinct training sentences (after whitespace normalisation; `NS` and empty left out),
    how many of them occur in any evaluation set, how many in each, and a few of them."""

    n_train_sentences: int
    n_shared: int
    shared_per_eval_set: dict[str, int]
    examples: tuple[str, ...]

    @property
    def fraction(self) -> float:
        return self.n_shared / self.n_train_sentences if self.n_train_sentences else 0.0


def normalise_whitespace(sentence: str) -> str:
    """Collapse every run of whitespace to one space and strip both ends."""
    return " ".join(sentence.split())


def _sentences(examples: Iterable[PairExample]) -> set[str]:
    found: set[str] = set()
    for example in examples:
        for side in (example.text_a, example.text_b):
            if side is None:
                continue
            text = normalise_whitespace(side)
            if text not in _PLACEHOLDERS:
                found.add(text)
    return found


def sentence_overlap(
    train: Iterable[PairExample], eval_sets: Mapping[str, Iterable[PairExample]]
) -> OverlapReport:
    """Which distinct training sentences occur verbatim (up to whitespace) in the eval sets."""
    train_sentences = _sentences(train)
    shared: set[str] = set()
    per_set: dict[str, int] = {}
    for name, examples in eval_sets.items():
        in_set = train_sentences & _sentences(examples)
        per_set[name] = len(in_set)
        shared |= in_set
    return OverlapReport(
        n_train_sentences=len(train_sentences),
        n_shared=len(shared),
        shared_per_eval_set=per_set,
        examples=tuple(sorted(shared)[:_EXAMPLES_KEPT]),
    )


def check_no_eval_overlap(
    train_path: str | Path,
    train_examples: Iterable[PairExample],
    eval_sets: Mapping[str, Iterable[PairExample]],
    max_fraction: float = 0.01,
    hint: str = PAWS_WIKI_DEV_HINT,
) -> OverlapReport:
    """Raise DataContaminationError if more than `max_fraction` of the training sentences occur
    in the evaluation sets; otherwise return the OverlapReport."""
    report = sentence_overlap(train_examples, eval_sets)
    if report.n_shared and report.fraction > max_fraction:
        worst = sorted(
            (item for item in report.shared_per_eval_set.items() if item[1]),
            key=lambda item: -item[1],
        )
        with_sets = ", ".join(f"{name} ({count})" for name, count in worst)
        raise DataContaminationError(
            f"training file {train_path} shares {report.n_shared} of {report.n_train_sentences} "
            f"sentences ({100 * report.fraction:.1f}%, limit {100 * max_fraction:g}%) with "
            f"{with_sets}; e.g. {report.examples[0]!r}; {hint}"
        )
    return report
