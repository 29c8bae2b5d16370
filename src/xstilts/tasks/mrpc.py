"""Microsoft Research Paraphrase Corpus: a semantic intermediate task (binary paraphrase).
Train is the official msr_paraphrase_train.txt; dev is the official test file (no GLUE dev cut)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xstilts.data.glue import read_glue_tsv
from xstilts.data.records import PairExample
from xstilts.tasks.base import ClassificationTask, Split, TaskSpec
from xstilts.tasks.registry import register_task

MRPC_FILES = {
    "train": "mrpc/msr_paraphrase_train.txt",
    "dev": "mrpc/msr_paraphrase_test.txt",
}


@register_task
class Mrpc(ClassificationTask):
    spec = TaskSpec(
        name="mrpc",
        category="semantic",
        head="classification",
        labels=("not_paraphrase", "paraphrase"),
        metric="accuracy",
        description="MRPC sentence-pair paraphrase (binary); official train, official test as dev",
        source="mrpc/msr_paraphrase_{train,test}.txt (official MSR release, 4,076 + 1,725 pairs)",
        hf_dataset="nyu-mll/glue (config mrpc)",
    )

    def files(self, data_dir: Path) -> dict[str, Path]:
        return {split: data_dir / rel for split, rel in MRPC_FILES.items()}

    def examples(self, data_dir: Path, split: Split) -> Sequence[PairExample]:
        return read_glue_tsv(data_dir / MRPC_FILES[split], "mrpc")
