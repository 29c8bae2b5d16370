"""UD English EWT supertagging (relation, head side, head distance per word): a syntactic task.
221 tags fixed from EWT r2.16 train, sorted, then a gold-only `<unk>` for dev tags unseen in train."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from transformers import PreTrainedTokenizerBase

from xstilts.batching import EncodedDataset
from xstilts.data.conllu import read_conllu
from xstilts.data.errors import DataFormatError
from xstilts.data.records import TaggedSentence
from xstilts.data.supertags import ud_supertag_sentence
from xstilts.tasks.base import Split, TaggingTask, TaskSpec
from xstilts.tasks.registry import register_task
from xstilts.tasks.ud_upos import EWT_FILES

UNK_TAG = "<unk>"

# sorted(set of the supertags of UD English EWT r2.16 train), see data/supertags.py for the
# definition; tests/tasks check that this equals the set rebuilt from the shared train file.
UD_SUPERTAGS: tuple[str, ...] = (
    "acl<1", "acl<2", "acl<3-5", "acl<6+", "acl>2", "acl>3-5", "acl>6+",
    "advcl<1", "advcl<2", "advcl<3-5", "advcl<6+", "advcl>1", "advcl>2", "advcl>3-5", "advcl>6+",
    "advmod<1", "advmod<2", "advmod<3-5", "advmod<6+",
    "advmod>1", "advmod>2", "advmod>3-5", "advmod>6+",
    "amod<1", "amod<2", "amod<3-5", "amod<6+", "amod>1", "amod>2", "amod>3-5", "amod>6+",
    "appos<1", "appos<2", "appos<3-5", "appos<6+",
    "aux<1", "aux<2", "aux<3-5", "aux<6+", "aux>1", "aux>2", "aux>3-5", "aux>6+",
    "case<1", "case<2", "case<3-5", "case<6+", "case>1", "case>2", "case>3-5", "case>6+",
    "cc<1", "cc<6+", "cc>1", "cc>2", "cc>3-5", "cc>6+",
    "ccomp<1", "ccomp<2", "ccomp<3-5", "ccomp<6+", "ccomp>2", "ccomp>3-5", "ccomp>6+",
    "compound<1", "compound<2", "compound<3-5", "compound<6+",
    "compound>1", "compound>2", "compound>3-5", "compound>6+",
    "conj<1", "conj<2", "conj<3-5", "conj<6+",
    "cop<1", "cop<2", "cop<3-5", "cop<6+", "cop>1", "cop>2", "cop>3-5", "cop>6+",
    "csubj<1", "csubj<2", "csubj<3-5", "csubj<6+", "csubj>1", "csubj>2", "csubj>3-5", "csubj>6+",
    "dep<1", "dep<3-5",
    "det>1", "det>2", "det>3-5", "det>6+",
    "discourse<1", "discourse<2", "discourse<3-5", "discourse<6+",
    "discourse>1", "discourse>2", "discourse>3-5", "discourse>6+",
    "dislocated>2", "dislocated>3-5", "dislocated>6+",
    "expl<1", "expl<3-5", "expl>1", "expl>2", "expl>3-5", "expl>6+",
    "fixed<1", "fixed<2",
    "flat<1", "flat<2", "flat<3-5", "flat<6+",
    "goeswith<1", "goeswith<2", "goeswith<3-5", "goeswith<6+",
    "iobj<1", "iobj<2", "iobj<3-5", "iobj<6+",
    "list<1", "list<2", "list<3-5", "list<6+", "list>1",
    "mark<6+", "mark>1", "mark>2", "mark>3-5", "mark>6+",
    "nmod<1", "nmod<2", "nmod<3-5", "nmod<6+", "nmod>1", "nmod>2", "nmod>3-5", "nmod>6+",
    "nsubj<1", "nsubj<2", "nsubj<3-5", "nsubj<6+", "nsubj>1", "nsubj>2", "nsubj>3-5", "nsubj>6+",
    "nummod<1", "nummod<2", "nummod>1", "nummod>2", "nummod>3-5", "nummod>6+",
    "obj<1", "obj<2", "obj<3-5", "obj<6+", "obj>1", "obj>2", "obj>3-5", "obj>6+",
    "obl<1", "obl<2", "obl<3-5", "obl<6+", "obl>1", "obl>2", "obl>3-5", "obl>6+",
    "orphan<1", "orphan<2", "orphan<3-5", "orphan<6+", "orphan>2", "orphan>3-5",
    "parataxis<1", "parataxis<2", "parataxis<3-5", "parataxis<6+",
    "parataxis>1", "parataxis>2", "parataxis>3-5", "parataxis>6+",
    "punct<1", "punct<2", "punct<3-5", "punct<6+", "punct>1", "punct>2", "punct>3-5", "punct>6+",
    "reparandum<1", "reparandum<2", "reparandum>1",
    "reparandum>2", "reparandum>3-5", "reparandum>6+",
    "root",
    "vocative<1", "vocative<2", "vocative<3-5", "vocative<6+",
    "vocative>1", "vocative>2", "vocative>3-5", "vocative>6+",
    "xcomp<1", "xcomp<2", "xcomp<3-5", "xcomp<6+", "xcomp>1", "xcomp>2", "xcomp>3-5",
)  # fmt: skip


def tag_label_set(sentences: Iterable[TaggedSentence]) -> tuple[str, ...]:
    """The label set of a tagging task whose tags come from its train file: the distinct tags in
    sorted (code point) order, then UNK_TAG. Same file, same labels, same ids."""
    return (*sorted({tag for sentence in sentences for tag in sentence.tags}), UNK_TAG)


class GoldOnlyUnkTagging(TaggingTask):
    """A tagging task whose label set was built from its train file and ends with `<unk>`.

    `<unk>` is gold-only: a dev word whose tag is not in the set gets it, but the head has no
    output for it (`num_labels` is one less than `len(spec.labels)`), so no prediction can match
    it and such words count as errors, never as credit and never silently dropped. A train tag
    outside the set means the set was built from another file: that raises DataFormatError."""

    @property
    def num_labels(self) -> int:
        labels = self.spec.labels
        if not labels:
            raise ValueError(
                f"task {self.spec.name!r} has no labels yet: they come from the data; use "
                "task.with_data_labels(data_dir)"
            )
        if labels[-1] != UNK_TAG:
            raise ValueError(
                f"task {self.spec.name!r}: labels must be the train tags then {UNK_TAG!r}, "
                f"found {len(labels)} label(s)"
            )
        return len(labels) - 1

    def map_unseen(
        self,
        sentences: Iterable[tuple[int | None, TaggedSentence]],
        labels: Sequence[str],
        split: Split,
        path: Path,
    ) -> list[TaggedSentence]:
        """(line, sentence) pairs to sentences whose tags outside `labels` read UNK_TAG."""
        known = set(labels[:-1])
        out: list[TaggedSentence] = []
        for line, sentence in sentences:
            unseen = [tag for tag in sentence.tags if tag not in known]
            if unseen and split == "train":
                raise DataFormatError(
                    path,
                    line,
                    f"tag {unseen[0]!r} of sentence {sentence.id} is not among the "
                    f"{len(labels) - 1} tags of {self.spec.name}, which were built from a "
                    "different train file (another release?)",
                )
            if unseen:
                tags = tuple(tag if tag in known else UNK_TAG for tag in sentence.tags)
                sentence = replace(sentence, tags=tags)
            out.append(sentence)
        return out

    def encode(
        self,
        examples: Sequence[TaggedSentence],
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
    ) -> EncodedDataset:
        data = super().encode(examples, tokenizer, max_length)
        unk_id = self.num_labels
        data.meta["words_gold_unk"] = int(sum(np.sum(lab == unk_id) for lab in data.labels))
        return data


@register_task
class UdSupertag(GoldOnlyUnkTagging):
    spec = TaskSpec(
        name="ud_supertag",
        category="syntactic",
        head="tagging",
        labels=(*UD_SUPERTAGS, UNK_TAG),
        metric="accuracy",
        description="UD supertagging on English EWT: relation+head side+distance, 221 tags",
        source="ud-english-ewt/en_ewt-ud-{train,dev}.conllu (UD r2.16+, CC BY-SA 4.0); "
        "tags from xstilts.data.supertags, label set fixed from r2.16 train",
        hf_dataset="universal-dependencies/universal_dependencies (config en_ewt)",
    )

    def files(self, data_dir: Path) -> dict[str, Path]:
        return {split: data_dir / rel for split, rel in EWT_FILES.items()}

    def examples(self, data_dir: Path, split: Split) -> Sequence[TaggedSentence]:
        path = data_dir / EWT_FILES[split]
        pairs = []
        for sentence in read_conllu(path):
            try:
                pairs.append((sentence.line, ud_supertag_sentence(sentence)))
            except ValueError as err:
                raise DataFormatError(path, sentence.line, str(err)) from None
        return self.map_unseen(pairs, self.spec.labels, split, path)
