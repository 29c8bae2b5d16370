"""Cosmos QA commonsense reading comprehension, 4-way multiple choice: a semantic task.
Only the validation file is here, so a fixed 20% of it (by hashed id) is held out as dev."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xstilts.data.multiple_choice import COSMOSQA_ANSWER_COLUMNS, read_cosmosqa
from xstilts.data.records import MultipleChoiceExample
from xstilts.tasks.base import MultipleChoiceTask, Split, TaskSpec, holdout_split
from xstilts.tasks.registry import register_task

COSMOSQA_VALID = "cosmosqa/valid.csv"


@register_task
class CosmosQa(MultipleChoiceTask):
    spec = TaskSpec(
        name="cosmosqa",
        category="semantic",
        head="multiple_choice",
        labels=COSMOSQA_ANSWER_COLUMNS,
        metric="accuracy",
        description="Cosmos QA commonsense reading comprehension (4 answers), valid.csv 80/20",
        source="cosmosqa/valid.csv (2,985 questions, upstream layout)",
        hf_dataset="allenai/cosmos_qa",
    )

    def files(self, data_dir: Path) -> dict[str, Path]:
        return {"all": data_dir / COSMOSQA_VALID}

    def examples(self, data_dir: Path, split: Split) -> Sequence[MultipleChoiceExample]:
        examples = read_cosmosqa(data_dir / COSMOSQA_VALID)
        return holdout_split(examples, split, dev_fraction=0.2, salt="cosmosqa")
