"""CoLA grammatical acceptability (single sentences, Matthews correlation): a syntactic task.
Train is the official in-domain train file; dev is in-domain dev (out-of-domain dev is unused)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xstilts.data.glue import read_glue_tsv
from xstilts.data.records import PairExample
from xstilts.tasks.base import ClassificationTask, Split, TaskSpec
from xstilts.tasks.registry import register_task

COLA_FILES = {
    "train": "cola/raw/in_domain_train.tsv",
    "dev": "cola/raw/in_domain_dev.tsv",
}


@register_task
class Cola(ClassificationTask):
    spec = TaskSpec(
        name="cola",
        category="syntactic",
        head="classification",
        labels=("unacceptable", "acceptable"),
        metric="matthews",
        description="CoLA acceptability of single English sentences (binary, Matthews correlation)",
        source="cola/raw/in_domain_{train,dev}.tsv (CoLA 1.1 public release layout)",
        hf_dataset="nyu-mll/glue (config cola)",
    )

    def files(self, data_dir: Path) -> dict[str, Path]:
        return {split: data_dir / rel for split, rel in COLA_FILES.items()}

    def examples(self, data_dir: Path, split: Split) -> Sequence[PairExample]:
        return read_glue_tsv(data_dir / COLA_FILES[split], "cola")
