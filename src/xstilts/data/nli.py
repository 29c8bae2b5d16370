"""NLI files (XNLI/XTREME TSV, GLUE MNLI TSV, MNLI dev-matched) as labelled sentence pairs.
Labels map by one fixed order, entailment/neutral/contradiction -> 0/1/2, in every reader."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from xstilts.data.errors import DataFormatError
from xstilts.data.io import iter_lines
from xstilts.data.records import PairExample

NLI_LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")
_LABEL_IDS = {name: index for index, name in enumerate(NLI_LABELS)}
# the XNLI release's copy of MNLI train writes "contradictory"
_LABEL_ALIASES = {"contradictory": "contradiction"}
NO_GOLD_LABEL = "-"

_PREMISE_COLUMNS = ("sentence1", "premise")
_HYPOTHESIS_COLUMNS = ("sentence2", "hypothesis", "hypo")
_ID_COLUMNS = ("pairID", "index")
_XNLI_HEADERS = {("premise", "hypo", "label"), ("premise", "hypothesis", "label")}


@dataclass(frozen=True, slots=True)
class NliFile:
    """The pairs of one NLI file; `skipped_no_gold` counts rows whose gold label is `-`
    (annotators did not agree), which are left out as in the official evaluation."""

    path: str
    examples: list[PairExample]
    skipped_no_gold: int


def nli_label_id(label: str, path: str | Path, line: int) -> int:
    """The class index of an NLI label name; an unknown name raises DataFormatError."""
    name = _LABEL_ALIASES.get(label, label)
    if name not in _LABEL_IDS:
        raise DataFormatError(
            path, line, f"unknown NLI label {label!r}; expected one of {NLI_LABELS}"
        )
    return _LABEL_IDS[name]


def read_xnli_tsv(path: str | Path) -> NliFile:
    """XTREME-style XNLI TSV (e.g. `xnli-en/dev-en.tsv`): premise, hypothesis, label; no header.

    A `premise hypo label` header line, as in the XNLI release's MNLI copy, is skipped. Ids are
    the 1-based line numbers. Blank lines are skipped; any other row needs exactly 3 fields."""
    examples: list[PairExample] = []
    skipped = 0
    first = True
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        fields = line.split("\t")
        if first and tuple(fields) in _XNLI_HEADERS:
            first = False
            continue
        first = False
        if len(fields) != 3:
            raise DataFormatError(
                path,
                lineno,
                f"expected 3 tab-separated fields (premise, hypothesis, label), "
                f"found {len(fields)}",
            )
        premise, hypothesis, label = fields
        if label == NO_GOLD_LABEL:
            skipped += 1
            continue
        examples.append(
            PairExample(str(lineno), premise, hypothesis, nli_label_id(label, path, lineno))
        )
    return NliFile(str(path), examples, skipped)


def _column(header: Sequence[str], names: Sequence[str], path: str | Path, line: int) -> int:
    for name in names:
        if name in header:
            return header.index(name)
    raise DataFormatError(
        path, line, f"header has none of the columns {list(names)}; found {list(header)}"
    )


def read_mnli_tsv(path: str | Path) -> NliFile:
    """An MNLI-style TSV with a header: GLUE (`sentence1`, `sentence2`, `gold_label`) or the
    dev-matched copy in shared (`index premise hypothesis gold_label ...`).

    Ids come from `pairID` (GLUE) or `index`, else the line number. Rows whose gold label is `-`
    are skipped and counted. Every row must have as many fields as the header; quotes are data
    (GLUE files are not CSV-quoted)."""
    examples: list[PairExample] = []
    skipped = 0
    header: list[str] | None = None
    premise_at = hypothesis_at = label_at = 0
    id_at: int | None = None
    seen: dict[str, int] = {}
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        fields = line.split("\t")
        if header is None:
            header = fields
            premise_at = _column(header, _PREMISE_COLUMNS, path, lineno)
            hypothesis_at = _column(header, _HYPOTHESIS_COLUMNS, path, lineno)
            label_at = _column(header, ("gold_label",), path, lineno)
            id_at = next((header.index(c) for c in _ID_COLUMNS if c in header), None)
            continue
        if len(fields) != len(header):
            raise DataFormatError(
                path,
                lineno,
                f"expected {len(header)} tab-separated fields (as the header), found {len(fields)}",
            )
        label = fields[label_at]
        if label == NO_GOLD_LABEL:
            skipped += 1
            continue
        pair_id = fields[id_at] if id_at is not None else str(lineno)
        if not pair_id:
            raise DataFormatError(path, lineno, "empty id")
        if (first := seen.get(pair_id)) is not None:
            raise DataFormatError(path, lineno, f"duplicate id {pair_id!r} (first on line {first})")
        seen[pair_id] = lineno
        examples.append(
            PairExample(
                pair_id,
                fields[premise_at],
                fields[hypothesis_at],
                nli_label_id(label, path, lineno),
            )
        )
    if header is None:
        raise DataFormatError(path, None, "empty file: no header line")
    return NliFile(str(path), examples, skipped)
