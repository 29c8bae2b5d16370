"""English NLI on MNLI dev-matched (the only MNLI file here): a semantic intermediate task (3-way).
A fixed 20% of its 9,815 pairs (by hashed index) is held out as dev; the rest is train."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xstilts.data.nli import NLI_LABELS, read_mnli_tsv
from xstilts.data.records import PairExample
from xstilts.tasks.base import ClassificationTask, Split, TaskSpec, holdout_split
from xstilts.tasks.registry import register_task

MNLI_DEV_MATCHED = "mnli-dev-matched/mnli_development_set_number_of_correct_responses.txt"


@register_task
class MnliDevMatched(ClassificationTask):
    spec = TaskSpec(
        name="mnli_dev_matched",
        category="semantic",
        head="classification",
        labels=NLI_LABELS,
        metric="accuracy",
        description="English NLI (entailment / neutral / contradiction) on MNLI dev-matched, 80/20",
        source=f"{MNLI_DEV_MATCHED} (9,815 pairs in GLUE order, with an extra column)",
        hf_dataset="nyu-mll/glue (config mnli, split validation_matched)",
    )

    def files(self, data_dir: Path) -> dict[str, Path]:
        return {"all": data_dir / MNLI_DEV_MATCHED}

    def examples(self, data_dir: Path, split: Split) -> Sequence[PairExample]:
        examples = read_mnli_tsv(data_dir / MNLI_DEV_MATCHED).examples
        return holdout_split(examples, split, dev_fraction=0.2, salt="mnli_dev_matched")
