"""CCGbank supertagging (lexical category per word, WSJ 02-21 train / 00 dev): a syntactic task.
Labels come from the data: bind them with `with_data_labels(data_dir)` before encoding."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from transformers import PreTrainedTokenizerBase

from xstilts.batching import EncodedDataset
from xstilts.data.ccgbank import CCGBANK_SPLIT_SECTIONS, read_ccgbank_split
from xstilts.data.records import TaggedSentence
from xstilts.tasks.base import Split, TaskSpec
from xstilts.tasks.registry import register_task
from xstilts.tasks.ud_supertag import GoldOnlyUnkTagging, tag_label_set

CCGBANK_AUTO = "ccgbank/data/AUTO"


@register_task
class CcgSupertag(GoldOnlyUnkTagging):
    """CCG supertagging on CCGbank (LDC2005T13, licensed: users bring it).

    The label set is every lexical category of train (sections 02-21) in sorted order, then the
    gold-only `<unk>` (see GoldOnlyUnkTagging): dev categories unseen in train count as errors.
    No frequency cut-off is applied (the usual 425-category set keeps those seen 10+ times).
    `spec.labels` is empty on the registered task; `with_data_labels(data_dir)` returns a copy
    whose spec carries the labels, and the pipeline must use that copy for `num_labels` and
    `encode`. The labels are a function of the train files, which `files()` lists, so they are
    covered by the stage's cache key."""

    spec = TaskSpec(
        name="ccg_supertag",
        category="syntactic",
        head="tagging",
        labels=(),
        metric="accuracy",
        description="CCG supertagging on CCGbank WSJ (train categories + gold-only <unk>)",
        source=f"{CCGBANK_AUTO}/NN/wsj_NNxx.auto (CCGbank 1.1, LDC2005T13; not here): "
        "sections 02-21 train, 00 dev",
        hf_dataset=None,
    )

    def files(self, data_dir: Path) -> dict[str, Path]:
        root = data_dir / CCGBANK_AUTO
        out: dict[str, Path] = {}
        for split in ("train", "dev"):
            for section in CCGBANK_SPLIT_SECTIONS[split]:
                found = sorted((root / f"{section:02d}").glob("*.auto"))
                if not found:
                    raise FileNotFoundError(
                        f"no .auto files in {root / f'{section:02d}'} (CCGbank section "
                        f"{section:02d}, {split}); expected the layout {self.spec.source}"
                    )
                out.update({f"{split}:{p.relative_to(root)}": p for p in found})
        return out

    def labels_from_data(self, data_dir: Path) -> tuple[str, ...]:
        """Sorted distinct categories of train, then `<unk>`: deterministic for given files."""
        return tag_label_set(read_ccgbank_split(data_dir / CCGBANK_AUTO, "train"))

    def with_data_labels(self, data_dir: Path) -> CcgSupertag:
        """A copy of this task whose spec carries the labels built from `data_dir`'s train."""
        bound = copy.copy(self)
        bound.spec = replace(self.spec, labels=self.labels_from_data(data_dir))
        return bound

    def examples(self, data_dir: Path, split: Split) -> Sequence[TaggedSentence]:
        root = data_dir / CCGBANK_AUTO
        labels = self.spec.labels or self.labels_from_data(data_dir)
        sentences = read_ccgbank_split(root, split)
        return self.map_unseen(((None, s) for s in sentences), labels, split, root)

    def encode(
        self,
        examples: Sequence[TaggedSentence],
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
    ) -> EncodedDataset:
        if not self.spec.labels:
            raise ValueError(
                "ccg_supertag's labels come from the data: encode with the task returned by "
                "with_data_labels(data_dir)"
            )
        return super().encode(examples, tokenizer, max_length)
