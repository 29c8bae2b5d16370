"""SNLI in the SentEval/e-SNLI line-file layout (s1, s2, labels): a semantic NLI task (3-way).
SNLI train is not here: dev and test are pooled and a fixed 20% (by hashed id) is held out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xstilts.data.errors import DataFormatError
from xstilts.data.io import iter_lines
from xstilts.data.nli import NLI_LABELS, nli_label_id
from xstilts.data.records import PairExample
from xstilts.tasks.base import ClassificationTask, Split, TaskSpec, holdout_split
from xstilts.tasks.registry import register_task

SNLI_DIR = "snli"
SNLI_PARTS = ("dev", "test")
SNLI_COLUMNS = ("s1", "s2", "labels")


def read_snli_lines(folder: Path, part: str) -> list[PairExample]:
    """Pairs from the parallel files `s1.<part>`, `s2.<part>`, `labels.<part>`: line i of each
    forms one pair, id "<part>:<i>". Sentences keep their trailing space; the files must have
    the same number of lines and every label must be an NLI label."""
    columns = {
        name: [line for _, line in iter_lines(folder / f"{name}.{part}")] for name in SNLI_COLUMNS
    }
    sizes = {name: len(lines) for name, lines in columns.items()}
    if len(set(sizes.values())) != 1:
        raise DataFormatError(folder / f"labels.{part}", None, f"line counts differ: {sizes}")
    labels_path = folder / f"labels.{part}"
    return [
        PairExample(f"{part}:{i}", s1, s2, nli_label_id(label, labels_path, i))
        for i, (s1, s2, label) in enumerate(
            zip(columns["s1"], columns["s2"], columns["labels"], strict=True), start=1
        )
    ]


@register_task
class Snli(ClassificationTask):
    spec = TaskSpec(
        name="snli",
        category="semantic",
        head="classification",
        labels=NLI_LABELS,
        metric="accuracy",
        description="SNLI (entailment / neutral / contradiction); dev+test pooled, 80/20 by id",
        source="snli/{s1,s2,labels}.{dev,test} (e-SNLI copy of SNLI 1.0, no '-' labels)",
        hf_dataset="stanfordnlp/snli",
    )

    def files(self, data_dir: Path) -> dict[str, Path]:
        return {
            f"{name}.{part}": data_dir / SNLI_DIR / f"{name}.{part}"
            for part in SNLI_PARTS
            for name in SNLI_COLUMNS
        }

    def examples(self, data_dir: Path, split: Split) -> Sequence[PairExample]:
        examples = [ex for part in SNLI_PARTS for ex in read_snli_lines(data_dir / SNLI_DIR, part)]
        return holdout_split(examples, split, dev_fraction=0.2, salt="snli")
