"""UD English EWT universal part-of-speech tagging: a syntactic intermediate task.
17 UPOS tags, one per syntactic word; multiword-token and empty-node lines are skipped by the reader."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xstilts.data.conllu import read_conllu, to_tagged
from xstilts.data.errors import DataFormatError
from xstilts.data.records import TaggedSentence
from xstilts.tasks.base import Split, TaggingTask, TaskSpec
from xstilts.tasks.registry import register_task

UPOS_TAGS = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip

EWT_FILES = {
    "train": "ud-english-ewt/en_ewt-ud-train.conllu",
    "dev": "ud-english-ewt/en_ewt-ud-dev.conllu",
}


@register_task
class UdUpos(TaggingTask):
    spec = TaskSpec(
        name="ud_upos",
        category="syntactic",
        head="tagging",
        labels=UPOS_TAGS,
        metric="accuracy",
        description="Universal POS tagging on UD English EWT (17 tags, first-sub-word labels)",
        source="ud-english-ewt/en_ewt-ud-{train,dev}.conllu (UD r2.16+, CC BY-SA 4.0)",
        hf_dataset="universal_dependencies (config en_ewt)",
    )

    def files(self, data_dir: Path) -> dict[str, Path]:
        return {split: data_dir / rel for split, rel in EWT_FILES.items()}

    def examples(self, data_dir: Path, split: Split) -> Sequence[TaggedSentence]:
        return read_upos_sentences(data_dir / EWT_FILES[split])


def read_upos_sentences(path: Path) -> list[TaggedSentence]:
    """A CoNLL-U file as words with their UPOS tags; a tag outside the 17 is an error (file, line)."""
    out = []
    for sent in read_conllu(path):
        for tok in sent.tokens:
            if tok.upos not in UPOS_TAGS:
                raise DataFormatError(
                    path, sent.line, f"unknown UPOS tag {tok.upos!r} on word {tok.form!r}"
                )
        out.append(to_tagged(sent, lambda tok: tok.upos))
    return out
