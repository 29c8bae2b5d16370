"""SQuAD 2.0 extractive QA with unanswerable questions (answer = the `<s>` token): semantic.
Not available here: it reads the upstream `train-v2.0.json` / `dev-v2.0.json` a user brings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xstilts.data.records import SpanExample
from xstilts.data.squad import read_squad
from xstilts.tasks.base import SpanTask, Split, TaskSpec
from xstilts.tasks.registry import register_task

SQUAD_V2_FILES = {
    "train": "squad/train-v2.0.json",
    "dev": "squad/dev-v2.0.json",
}


@register_task
class SquadV2(SpanTask):
    spec = TaskSpec(
        name="squad_v2",
        category="semantic",
        head="span",
        labels=("start", "end"),
        metric="span_exact",
        description="SQuAD 2.0 extractive QA, unanswerable = (0, 0); exact start+end token match",
        source="squad/{train,dev}-v2.0.json (rajpurkar.github.io/SQuAD-explorer files; not here)",
        hf_dataset="rajpurkar/squad_v2",
    )

    def files(self, data_dir: Path) -> dict[str, Path]:
        return {split: data_dir / rel for split, rel in SQUAD_V2_FILES.items()}

    def examples(self, data_dir: Path, split: Split) -> Sequence[SpanExample]:
        return read_squad(data_dir / SQUAD_V2_FILES[split])
