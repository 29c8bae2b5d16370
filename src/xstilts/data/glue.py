"""Reader for the GLUE-style TSV files of CoLA, MRPC, SST-2, QQP, RTE and QNLI.
Each task's accepted layouts (header or none, column roles) are data in `GLUE_FORMATS`."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from xstilts.data.errors import DataFormatError
from xstilts.data.io import iter_lines
from xstilts.data.records import PairExample


@dataclass(frozen=True, slots=True)
class TsvLayout:
    """One file layout: its header (None for a headerless file) and which column holds what.

    `id` None means the example id is made from the file name and line number; `label` None
    marks an unlabeled (test) layout, whose examples get label -1."""

    header: tuple[str, ...] | None
    n_columns: int
    text_a: int
    text_b: int | None
    label: int | None
    id: int | tuple[int, ...] | None


@dataclass(frozen=True, slots=True)
class GlueFormat:
    """A task's label vocabulary and the layouts its files come in (at most one headerless)."""

    task: str
    labels: Mapping[str, int]
    layouts: tuple[TsvLayout, ...]


_BINARY = {"0": 0, "1": 1}
_ENTAILMENT = {"entailment": 0, "not_entailment": 1}

GLUE_FORMATS: dict[str, GlueFormat] = {
    # CoLA raw/tokenized and GLUE train/dev: source, label, original mark, sentence; no header.
    "cola": GlueFormat(
        "cola",
        _BINARY,
        (
            TsvLayout(None, 4, text_a=3, text_b=None, label=1, id=None),
            TsvLayout(("index", "sentence"), 2, text_a=1, text_b=None, label=None, id=0),
        ),
    ),
    # Official msr_paraphrase_{train,test}.txt and GLUE MRPC train/dev share one header.
    "mrpc": GlueFormat(
        "mrpc",
        _BINARY,
        (
            TsvLayout(
                ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
                5,
                text_a=3,
                text_b=4,
                label=0,
                id=(1, 2),
            ),
            TsvLayout(
                ("index", "#1 ID", "#2 ID", "#1 String", "#2 String"),
                5,
                text_a=3,
                text_b=4,
                label=None,
                id=(1, 2),
            ),
        ),
    ),
    "sst2": GlueFormat(
        "sst2",
        _BINARY,
        (
            TsvLayout(("sentence", "label"), 2, text_a=0, text_b=None, label=1, id=None),
            TsvLayout(("index", "sentence"), 2, text_a=1, text_b=None, label=None, id=0),
        ),
    ),
    # GLUE train/dev have the header; subsets cut from GLUE train (qqp-subset) have none.
    "qqp": GlueFormat(
        "qqp",
        _BINARY,
        (
            TsvLayout(
                ("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
                6,
                text_a=3,
                text_b=4,
                label=5,
                id=0,
            ),
            TsvLayout(None, 6, text_a=3, text_b=4, label=5, id=0),
            TsvLayout(("id", "question1", "question2"), 3, text_a=1, text_b=2, label=None, id=0),
        ),
    ),
    # The headerless layout reads train files split in two (e.g. a `val.tsv` cut from train).
    "rte": GlueFormat(
        "rte",
        _ENTAILMENT,
        (
            TsvLayout(
                ("index", "sentence1", "sentence2", "label"), 4, text_a=1, text_b=2, label=3, id=0
            ),
            TsvLayout(None, 4, text_a=1, text_b=2, label=3, id=0),
            TsvLayout(("index", "sentence1", "sentence2"), 3, text_a=1, text_b=2, label=None, id=0),
        ),
    ),
    "qnli": GlueFormat(
        "qnli",
        _ENTAILMENT,
        (
            TsvLayout(
                ("index", "question", "sentence", "label"), 4, text_a=1, text_b=2, label=3, id=0
            ),
            TsvLayout(("index", "question", "sentence"), 3, text_a=1, text_b=2, label=None, id=0),
        ),
    ),
}


def _choose_layout(path: Path, lineno: int, fmt: GlueFormat, first: str) -> tuple[TsvLayout, bool]:
    """The layout whose header is `first` (True: skip it), else the headerless one."""
    fields = tuple(first.split("\t"))
    for layout in fmt.layouts:
        if layout.header == fields:
            return layout, True
    for layout in fmt.layouts:
        if layout.header is None:
            return layout, False
    expected = " | ".join("\\t".join(lay.header or ()) for lay in fmt.layouts)
    raise DataFormatError(
        path, lineno, f"expected a {fmt.task} header ({expected}), found {first[:200]!r}"
    )


def _parse_row(
    path: Path, lineno: int, fields: list[str], fmt: GlueFormat, layout: TsvLayout
) -> PairExample:
    if len(fields) != layout.n_columns:
        raise DataFormatError(
            path,
            lineno,
            f"expected {layout.n_columns} tab-separated fields, found {len(fields)}",
        )
    label = -1
    if layout.label is not None:
        raw = fields[layout.label]
        if raw not in fmt.labels:
            raise DataFormatError(
                path, lineno, f"expected a {fmt.task} label in {sorted(fmt.labels)}, found {raw!r}"
            )
        label = fmt.labels[raw]
    if layout.id is None:
        example_id = f"{path.name}:{lineno}"
    elif isinstance(layout.id, tuple):
        example_id = "-".join(fields[i] for i in layout.id)
    else:
        example_id = fields[layout.id]
    text_b = fields[layout.text_b] if layout.text_b is not None else None
    return PairExample(id=example_id, text_a=fields[layout.text_a], text_b=text_b, label=label)


def read_glue_tsv(
    path: str | Path, task: str, *, skip_malformed: bool = False
) -> list[PairExample]:
    """Read one GLUE-style TSV file of `task` (a key of GLUE_FORMATS) into PairExamples.

    The layout is chosen by the first line: a known header, else the task's headerless layout.
    Fields are split on tabs only (quotes are text: MRPC and QQP contain unbalanced `"`), and
    text is kept as released (SST-2's trailing spaces included). Blank lines are ignored. Ids
    come from the file's id column(s) (MRPC: "id1-id2"), else "file-name:line". Unlabeled test
    layouts give label -1. A row with the wrong field count or an unknown label raises
    DataFormatError with its line, unless `skip_malformed`, which drops such rows and warns
    with their line numbers (QQP: one GLUE train row has its label glued to question2)."""
    if task not in GLUE_FORMATS:
        raise KeyError(f"unknown GLUE task {task!r}; known: {sorted(GLUE_FORMATS)}")
    fmt = GLUE_FORMATS[task]
    path = Path(path)
    layout: TsvLayout | None = None
    examples: list[PairExample] = []
    skipped: list[int] = []
    for lineno, line in iter_lines(path):
        if not line:
            continue
        if layout is None:
            layout, is_header = _choose_layout(path, lineno, fmt, line)
            if is_header:
                continue
        try:
            examples.append(_parse_row(path, lineno, line.split("\t"), fmt, layout))
        except DataFormatError:
            if not skip_malformed:
                raise
            skipped.append(lineno)
    if layout is None:
        raise DataFormatError(path, None, f"empty file: expected {task} rows")
    if skipped:
        shown = ", ".join(map(str, skipped[:20])) + (" ..." if len(skipped) > 20 else "")
        warnings.warn(
            f"{path}: skipped {len(skipped)} malformed {task} row(s) at line(s) {shown}",
            stacklevel=2,
        )
    return examples
