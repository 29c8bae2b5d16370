"""SQuAD v1.1 extractive question answering (answer start/end tokens): a semantic task.
Not available here: it reads the upstream `train-v1.1.json` / `dev-v1.1.json` a user brings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xstilts.data.errors import DataFormatError
from xstilts.data.records import SpanExample
from xstilts.data.squad import read_squad
from xstilts.tasks.base import SpanTask, Split, TaskSpec
from xstilts.tasks.registry import register_task

SQUAD_FILES = {
    "train": "squad/train-v1.1.json",
    "dev": "squad/dev-v1.1.json",
}


@register_task
class Squad(SpanTask):
    spec = TaskSpec(
        name="squad",
        category="semantic",
        head="span",
        labels=("start", "end"),
        metric="span_exact",
        description="SQuAD v1.1 extractive QA; exact start+end token match with the first answer",
        source="squad/{train,dev}-v1.1.json (rajpurkar.github.io/SQuAD-explorer files; not here)",
        hf_dataset="rajpurkar/squad",
    )

    def files(self, data_dir: Path) -> dict[str, Path]:
        return {split: data_dir / rel for split, rel in SQUAD_FILES.items()}

    def examples(self, data_dir: Path, split: Split) -> Sequence[SpanExample]:
        path = data_dir / SQUAD_FILES[split]
        examples = read_squad(path)
        for ex in examples:
            if ex.answer_start < 0:
                raise DataFormatError(
                    path, None, f"question {ex.id} is unanswerable: a SQuAD 2.0 file (squad_v2)"
                )
        return examples
