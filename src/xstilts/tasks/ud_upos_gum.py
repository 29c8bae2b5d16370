"""UD English GUM universal part-of-speech tagging: a syntactic task on other genres than EWT.
The same 17 UPOS tags as ud_upos; train is the shared rebuild of GUM train from its sources."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xstilts.data.records import TaggedSentence
from xstilts.tasks.base import Split, TaggingTask, TaskSpec
from xstilts.tasks.registry import register_task
from xstilts.tasks.ud_upos import UPOS_TAGS, read_upos_sentences

GUM_FILES = {
    "train": "ud-english-gum/en_gum-ud-train.from_gum_dep.conllu.gz",
    "dev": "ud-english-gum/en_gum-ud-dev.conllu.gz",
}


@register_task
class UdUposGum(TaggingTask):
    spec = TaskSpec(
        name="ud_upos_gum",
        category="syntactic",
        head="tagging",
        labels=UPOS_TAGS,
        metric="accuracy",
        description="Universal POS tagging on UD English GUM (17 tags, first-sub-word labels)",
        source="ud-english-gum/en_gum-ud-train.from_gum_dep.conllu.gz (train rebuilt from the "
        "GUM sources, non-Reddit), en_gum-ud-dev.conllu.gz (release dev); CC BY 4.0",
        hf_dataset="universal-dependencies/universal_dependencies (config en_gum)",
    )

    def files(self, data_dir: Path) -> dict[str, Path]:
        return {split: data_dir / rel for split, rel in GUM_FILES.items()}

    def examples(self, data_dir: Path, split: Split) -> Sequence[TaggedSentence]:
        return read_upos_sentences(data_dir / GUM_FILES[split])
