"""English NLI on the XNLI English dev set: a semantic intermediate task (3-way).
It is the only labelled file here, so a fixed 20% of it (by hashed id) is held out as dev."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xstilts.data.nli import NLI_LABELS, read_xnli_tsv
from xstilts.data.records import PairExample
from xstilts.tasks.base import ClassificationTask, Split, TaskSpec, holdout_split
from xstilts.tasks.registry import register_task

XNLI_EN_DEV = "xnli-en/dev-en.tsv"


@register_task
class XnliEn(ClassificationTask):
    spec = TaskSpec(
        name="xnli_en",
        category="semantic",
        head="classification",
        labels=tuple(NLI_LABELS),
        metric="accuracy",
        description="English NLI (entailment / neutral / contradiction) on XNLI en dev, 80/20 split",
        source="xnli-en/dev-en.tsv (2,490 pairs, CC BY-NC 4.0)",
        hf_dataset="facebook/xnli (config en)",
    )

    def files(self, data_dir: Path) -> dict[str, Path]:
        return {"all": data_dir / XNLI_EN_DEV}

    def examples(self, data_dir: Path, split: Split) -> Sequence[PairExample]:
        examples = read_xnli_tsv(data_dir / XNLI_EN_DEV).examples
        return holdout_split(examples, split, dev_fraction=0.2, salt="xnli_en")
