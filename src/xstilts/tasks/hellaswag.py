"""HellaSwag commonsense sentence completion, 4-way multiple choice: a semantic task.
Not available here: it reads the upstream `hellaswag_{train,val}.jsonl` a user brings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xstilts.data.errors import DataFormatError
from xstilts.data.multiple_choice import read_hellaswag
from xstilts.data.records import MultipleChoiceExample
from xstilts.tasks.base import MultipleChoiceTask, Split, TaskSpec
from xstilts.tasks.registry import register_task

HELLASWAG_FILES = {
    "train": "hellaswag/hellaswag_train.jsonl",
    "dev": "hellaswag/hellaswag_val.jsonl",
}


@register_task
class HellaSwag(MultipleChoiceTask):
    spec = TaskSpec(
        name="hellaswag",
        category="semantic",
        head="multiple_choice",
        labels=("ending0", "ending1", "ending2", "ending3"),
        metric="accuracy",
        description="HellaSwag commonsense completion (4 endings); upstream train, val as dev",
        source="hellaswag/hellaswag_{train,val}.jsonl (rowanz/hellaswag data/ files; not here)",
        hf_dataset="Rowan/hellaswag",
    )

    def files(self, data_dir: Path) -> dict[str, Path]:
        return {split: data_dir / rel for split, rel in HELLASWAG_FILES.items()}

    def examples(self, data_dir: Path, split: Split) -> Sequence[MultipleChoiceExample]:
        path = data_dir / HELLASWAG_FILES[split]
        examples = read_hellaswag(path)
        for ex in examples:
            if len(ex.choices) != self.num_labels:
                raise DataFormatError(
                    path, None, f"context {ex.id}: expected 4 endings, found {len(ex.choices)}"
                )
        return examples
