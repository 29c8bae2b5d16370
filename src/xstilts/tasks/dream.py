"""DREAM dialogue-based reading comprehension, 3-way multiple choice: a semantic task.
Official train and dev files; the context is the dialogue's turns, one per line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xstilts.data.errors import DataFormatError
from xstilts.data.multiple_choice import read_dream
from xstilts.data.records import MultipleChoiceExample
from xstilts.tasks.base import MultipleChoiceTask, Split, TaskSpec
from xstilts.tasks.registry import register_task

DREAM_FILES = {
    "train": "dream/data/train.json",
    "dev": "dream/data/dev.json",
}


@register_task
class Dream(MultipleChoiceTask):
    spec = TaskSpec(
        name="dream",
        category="semantic",
        head="multiple_choice",
        labels=("choice0", "choice1", "choice2"),
        metric="accuracy",
        description="DREAM dialogue reading comprehension (3 answers), official train and dev",
        source="dream/data/{train,dev}.json (nlpdata/dream layout, 6,116 / 2,040 questions)",
        hf_dataset="dataset-org/dream",
    )

    def files(self, data_dir: Path) -> dict[str, Path]:
        return {split: data_dir / rel for split, rel in DREAM_FILES.items()}

    def examples(self, data_dir: Path, split: Split) -> Sequence[MultipleChoiceExample]:
        path = data_dir / DREAM_FILES[split]
        examples = read_dream(path)
        for ex in examples:
            if len(ex.choices) != self.num_labels:
                raise DataFormatError(
                    path, None, f"question {ex.id}: expected 3 choices, found {len(ex.choices)}"
                )
        return examples
