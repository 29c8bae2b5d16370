"""SST-2 binary sentiment of movie-review sentences, used by Phang et al.: counted as semantic.
Sentiment is neither syntactic nor semantic in the strict sense; GLUE train and dev are used."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xstilts.data.glue import read_glue_tsv
from xstilts.data.records import PairExample
from xstilts.tasks.base import ClassificationTask, Split, TaskSpec
from xstilts.tasks.registry import register_task

SST2_FILES = {
    "train": "sst2/train_full.tsv",
    "dev": "sst2/dev.tsv",
}


@register_task
class Sst2(ClassificationTask):
    spec = TaskSpec(
        name="sst2",
        category="semantic",
        head="classification",
        labels=("negative", "positive"),
        metric="accuracy",
        description="SST-2 sentiment (binary); semantic here, though sentiment is strictly neither",
        source="sst2/train_full.tsv (= GLUE SST-2/train.tsv), sst2/dev.tsv (= GLUE SST-2/dev.tsv)",
        hf_dataset="nyu-mll/glue (config sst2)",
    )

    def files(self, data_dir: Path) -> dict[str, Path]:
        return {split: data_dir / rel for split, rel in SST2_FILES.items()}

    def examples(self, data_dir: Path, split: Split) -> Sequence[PairExample]:
        return read_glue_tsv(data_dir / SST2_FILES[split], "sst2")
