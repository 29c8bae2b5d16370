"""Quora Question Pairs duplicate detection on a 23,497-row subset of GLUE train: a semantic task.
Its first row is GLUE's malformed one (label glued to question2) and is skipped; 20% held out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xstilts.data.glue import read_glue_tsv
from xstilts.data.records import PairExample
from xstilts.tasks.base import ClassificationTask, Split, TaskSpec, holdout_split
from xstilts.tasks.registry import register_task

QQP_SUBSET = "qqp-subset/new_dev.tsv"


@register_task
class Qqp(ClassificationTask):
    spec = TaskSpec(
        name="qqp",
        category="semantic",
        head="classification",
        labels=("not_duplicate", "duplicate"),
        metric="accuracy",
        description="Quora question-pair paraphrase (binary) on a GLUE-train subset, 80/20 by id",
        source="qqp-subset/new_dev.tsv (GLUE QQP train rows, headerless; not a standard split)",
        hf_dataset="nyu-mll/glue (config qqp)",
    )

    def files(self, data_dir: Path) -> dict[str, Path]:
        return {"all": data_dir / QQP_SUBSET}

    def examples(self, data_dir: Path, split: Split) -> Sequence[PairExample]:
        examples = read_glue_tsv(data_dir / QQP_SUBSET, "qqp", skip_malformed=True)
        return holdout_split(examples, split, dev_fraction=0.2, salt="qqp")
