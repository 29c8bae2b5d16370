"""CommonsenseQA, 5-way multiple-choice questions without a passage: a semantic task.
Not available here: it reads the upstream `{train,dev}_rand_split.jsonl` a user brings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xstilts.data.errors import DataFormatError
from xstilts.data.multiple_choice import read_commonsenseqa
from xstilts.data.records import MultipleChoiceExample
from xstilts.tasks.base import MultipleChoiceTask, Split, TaskSpec
from xstilts.tasks.registry import register_task

COMMONSENSEQA_FILES = {
    "train": "commonsenseqa/train_rand_split.jsonl",
    "dev": "commonsenseqa/dev_rand_split.jsonl",
}


@register_task
class CommonsenseQa(MultipleChoiceTask):
    spec = TaskSpec(
        name="commonsenseqa",
        category="semantic",
        head="multiple_choice",
        labels=("A", "B", "C", "D", "E"),
        metric="accuracy",
        description="CommonsenseQA questions (5 answers, no passage); random-split train and dev",
        source="commonsenseqa/{train,dev}_rand_split.jsonl (official v1.11 release; not here)",
        hf_dataset="tau/commonsense_qa",
    )

    def files(self, data_dir: Path) -> dict[str, Path]:
        return {split: data_dir / rel for split, rel in COMMONSENSEQA_FILES.items()}

    def examples(self, data_dir: Path, split: Split) -> Sequence[MultipleChoiceExample]:
        path = data_dir / COMMONSENSEQA_FILES[split]
        examples = read_commonsenseqa(path)
        for ex in examples:
            if len(ex.choices) != self.num_labels:
                raise DataFormatError(
                    path, None, f"question {ex.id}: expected 5 choices, found {len(ex.choices)}"
                )
        return examples
