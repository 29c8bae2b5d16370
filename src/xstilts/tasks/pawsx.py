"""PAWS-X, the target task: English paraphrase-adversarial pairs, evaluated zero-shot in 7 languages.
Train is the study's English training file; dev/test are the upstream x-final files per language."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xstilts.data.pawsx import pawsx_split_path, read_pawsx_tsv
from xstilts.data.records import PairExample
from xstilts.tasks.base import ClassificationTask, Split, TaskSpec
from xstilts.tasks.registry import register_task

PAWSX_DIR = "pawsx"


@register_task
class PawsX(ClassificationTask):
    spec = TaskSpec(
        name="pawsx",
        category="target",
        head="classification",
        labels=("not_paraphrase", "paraphrase"),
        metric="accuracy",
        description="PAWS-X paraphrase identification (target task; English train, 7-language eval)",
        source="pawsx/<lang>/{dev_2k,test_2k}.tsv; English train file set in the study",
        hf_dataset="google-research-datasets/paws-x",
    )

    def files(self, data_dir: Path) -> dict[str, Path]:
        return {"en-dev": pawsx_split_path(data_dir / PAWSX_DIR, "en", "dev")}

    def examples(self, data_dir: Path, split: Split) -> Sequence[PairExample]:
        return read_pawsx_tsv(pawsx_split_path(data_dir / PAWSX_DIR, "en", split)).examples
