"""CoNLL-2000 chunking (WSJ 15-18 train, 20 as dev; BIO tags of 11 phrase types): a syntactic task.
Read from the NLTK data package `conll2000.zip`; the shared test section serves as dev."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

from xstilts.data.errors import DataFormatError
from xstilts.data.records import TaggedSentence
from xstilts.tasks.base import Split, TaggingTask, TaskSpec
from xstilts.tasks.registry import register_task

CONLL2000_ZIP = "nltk-data/packages/corpora/conll2000.zip"
CONLL2000_MEMBERS = {"train": "conll2000/train.txt", "dev": "conll2000/test.txt"}
CHUNK_TYPES = ("ADJP", "ADVP", "CONJP", "INTJ", "LST", "NP", "PP", "PRT", "SBAR", "UCP", "VP")
CHUNK_TAGS = (*(f"{bio}-{t}" for bio in "BI" for t in CHUNK_TYPES), "O")


def read_conll2000(path: Path, member: str) -> list[TaggedSentence]:
    """Sentences of one CoNLL-2000 file inside a zip: lines "word POS chunk", a blank line after
    each sentence; ids "<member file name>:<first line>". Any other line raises DataFormatError."""
    where = Path(f"{path}:{member}")
    with zipfile.ZipFile(path) as archive, archive.open(member) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")
        sentences: list[TaggedSentence] = []
        words: list[str] = []
        tags: list[str] = []
        start = 0
        for lineno, line in enumerate(text, start=1):
            fields = line.rstrip("\r\n").split(" ")
            if fields == [""]:
                if words:
                    sentences.append(
                        TaggedSentence(f"{Path(member).name}:{start}", (*words,), (*tags,))
                    )
                    words, tags = [], []
                continue
            if len(fields) != 3 or fields[2] not in CHUNK_TAGS:
                raise DataFormatError(
                    where, lineno, f"expected 'word POS chunk-tag' with a tag in {CHUNK_TAGS}"
                )
            start = start if words else lineno
            words.append(fields[0])
            tags.append(fields[2])
    if words:
        sentences.append(TaggedSentence(f"{Path(member).name}:{start}", (*words,), (*tags,)))
    return sentences


@register_task
class PtbChunking(TaggingTask):
    spec = TaskSpec(
        name="ptb_chunking",
        category="syntactic",
        head="tagging",
        labels=CHUNK_TAGS,
        metric="accuracy",
        description="CoNLL-2000 chunking (23 BIO tags, per-word accuracy, not chunk F1)",
        source=f"{CONLL2000_ZIP} (NLTK data package; members {CONLL2000_MEMBERS['train']}, "
        f"{CONLL2000_MEMBERS['dev']})",
        hf_dataset=None,
    )

    def files(self, data_dir: Path) -> dict[str, Path]:
        return {"zip": data_dir / CONLL2000_ZIP}

    def examples(self, data_dir: Path, split: Split) -> Sequence[TaggedSentence]:
        return read_conll2000(data_dir / CONLL2000_ZIP, CONLL2000_MEMBERS[split])
