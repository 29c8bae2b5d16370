"""Adversarial NLI, rounds 1-3 dev concatenated: a semantic intermediate task (3-way).
ANLI train is not here, so a fixed 20% of the 3,198 dev pairs (by hashed uid) is held out as dev."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xstilts.data.anli import read_anli
from xstilts.data.nli import NLI_LABELS
from xstilts.data.records import PairExample
from xstilts.tasks.base import ClassificationTask, Split, TaskSpec, holdout_split
from xstilts.tasks.registry import register_task

ANLI_FILES = {f"r{r}": f"anli/ANLI_analysis_r{r}_dev.csv" for r in (1, 2, 3)}


@register_task
class Anli(ClassificationTask):
    spec = TaskSpec(
        name="anli",
        category="semantic",
        head="classification",
        labels=NLI_LABELS,
        metric="accuracy",
        description="Adversarial NLI (entailment / neutral / contradiction), rounds 1-3 dev, 80/20",
        source="anli/ANLI_analysis_r{1,2,3}_dev.csv (1,000 / 1,000 / 1,198 pairs, CC BY-NC 4.0)",
        hf_dataset="facebook/anli (splits dev_r1, dev_r2, dev_r3)",
    )

    def files(self, data_dir: Path) -> dict[str, Path]:
        return {part: data_dir / rel for part, rel in ANLI_FILES.items()}

    def examples(self, data_dir: Path, split: Split) -> Sequence[PairExample]:
        examples = [ex for rel in ANLI_FILES.values() for ex in read_anli(data_dir / rel)]
        return holdout_split(examples, split, dev_fraction=0.2, salt="anli")
