"""MultiNLI with its full 393k-pair train set: a semantic intermediate task (3-way).
Not available here: it reads GLUE's `MNLI/train.tsv` and `MNLI/dev_matched.tsv` a user brings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xstilts.data.nli import NLI_LABELS, read_mnli_tsv
from xstilts.data.records import PairExample
from xstilts.tasks.base import ClassificationTask, Split, TaskSpec
from xstilts.tasks.registry import register_task

MNLI_FILES = {
    "train": "MNLI/train.tsv",
    "dev": "MNLI/dev_matched.tsv",
}


@register_task
class Mnli(ClassificationTask):
    spec = TaskSpec(
        name="mnli",
        category="semantic",
        head="classification",
        labels=NLI_LABELS,
        metric="accuracy",
        description="MultiNLI (entailment / neutral / contradiction); GLUE train, dev-matched as dev",
        source="MNLI/{train,dev_matched}.tsv (GLUE download layout; not here)",
        hf_dataset="nyu-mll/glue (config mnli)",
    )

    def files(self, data_dir: Path) -> dict[str, Path]:
        return {split: data_dir / rel for split, rel in MNLI_FILES.items()}

    def examples(self, data_dir: Path, split: Split) -> Sequence[PairExample]:
        return read_mnli_tsv(data_dir / MNLI_FILES[split]).examples
