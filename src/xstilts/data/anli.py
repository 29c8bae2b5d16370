"""Reader for Adversarial NLI: the official JSONL release and the annotated analysis CSV files.
Labels e/n/c are entailment/neutral/contradiction, numbered 0/1/2 as by every NLI reader."""

from __future__ import annotations

from pathlib import Path

from xstilts.data.errors import DataFormatError
from xstilts.data.nli import nli_label_id
from xstilts.data.records import PairExample
from xstilts.data.rows import iter_csv_rows, iter_jsonl_objects, require_str

ANLI_LABEL_NAMES: dict[str, str] = {"e": "entailment", "n": "neutral", "c": "contradiction"}


def _label(path: Path, line: int, raw: object) -> int:
    if not isinstance(raw, str) or raw not in ANLI_LABEL_NAMES:
        raise DataFormatError(
            path, line, f"expected an ANLI label in {sorted(ANLI_LABEL_NAMES)}, found {raw!r}"
        )
    return nli_label_id(ANLI_LABEL_NAMES[raw], path, line)


def read_anli_csv(path: str | Path) -> list[PairExample]:
    """Read an `ANLI_analysis_r{1,2,3}_dev.csv` file: premise `context`, hypothesis `statement`,
    label `gold_label`, id `uid`. Column order differs between rounds, so columns are found by
    name. Fields may hold commas, quotes and newlines; errors name the line a record starts on."""
    path = Path(path)
    return [
        PairExample(
            id=row["uid"],
            text_a=row["context"],
            text_b=row["statement"],
            label=_label(path, line, row["gold_label"]),
        )
        for line, row in iter_csv_rows(path, ("uid", "context", "statement", "gold_label"))
    ]


def read_anli_jsonl(path: str | Path) -> list[PairExample]:
    """Read an official ANLI `{train,dev,test}.jsonl` file: one object per line with
    "uid", "premise", "hypothesis" and "label" (e|n|c)."""
    path = Path(path)
    return [
        PairExample(
            id=require_str(path, line, record, "uid"),
            text_a=require_str(path, line, record, "premise"),
            text_b=require_str(path, line, record, "hypothesis"),
            label=_label(path, line, record.get("label")),
        )
        for line, record in iter_jsonl_objects(path)
    ]


def read_anli(path: str | Path) -> list[PairExample]:
    """Read an ANLI file by its name: `.csv` (analysis release) or `.jsonl` (official), each
    optionally gzipped."""
    name = Path(path).name.removesuffix(".gz")
    if name.endswith(".csv"):
        return read_anli_csv(path)
    if name.endswith(".jsonl"):
        return read_anli_jsonl(path)
    raise DataFormatError(path, None, "expected an ANLI file ending in .csv or .jsonl (or .gz)")
