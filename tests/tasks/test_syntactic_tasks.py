"""Syntactic tasks on tiny upstream-format files: examples, labels, and exact token alignment
with the real XLM-R tokenizer (first-piece labels, zero-piece words, gold-only `<unk>`)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from xstilts.data.errors import DataFormatError
from xstilts.data.records import TaggedSentence
from xstilts.evaluate import majority_baseline, task_metric
from xstilts.heads import IGNORE_INDEX
from xstilts.tasks.registry import get_task
from xstilts.tasks.ud_supertag import UD_SUPERTAGS, UNK_TAG

I = IGNORE_INDEX  # noqa: E741
WriteData = Callable[[str, str | bytes], Path]


def conllu(sent_id: str, rows: list[tuple[str, str, int, str]]) -> str:
    """One CoNLL-U sentence from (form, upos, head, deprel) rows."""
    lines = [f"# sent_id = {sent_id}", f"# text = {' '.join(r[0] for r in rows)}"]
    for i, (form, upos, head, deprel) in enumerate(rows, start=1):
        lines.append(f"{i}\t{form}\t{form.lower()}\t{upos}\t_\t_\t{head}\t{deprel}\t_\t_")
    return "\n".join(lines) + "\n\n"


THE_CAT_SLEEPS = conllu(
    "train-1",
    [("The", "DET", 2, "det"), ("cat", "NOUN", 3, "nsubj"), ("sleeps", "VERB", 0, "root"),
     (".", "PUNCT", 3, "punct")],
)  # fmt: skip
# word 3 is U+007F, which XLM-R's normaliser deletes: the word gets no piece at all;
# "sleeps" (2 pieces) and "unbelievably" (4 pieces) label only their first piece.
ZERO_PIECE = conllu(
    "dev-1",
    [("The", "DET", 2, "det"), ("cat", "NOUN", 4, "nsubj"), ("\x7f", "SYM", 4, "punct"),
     ("sleeps", "VERB", 0, "root"), ("unbelievably", "ADV", 4, "advmod"),
     (".", "PUNCT", 4, "punct")],
)  # fmt: skip
# word 8 is dep<6+, a tag EWT train never has: gold `<unk>`
UNSEEN_TAG = conllu(
    "dev-2",
    [("Go", "VERB", 0, "root"), *[("a", "X", 1, "discourse")] * 6, ("zz", "X", 1, "dep")],
)


def sid(tag: str) -> int:
    return get_task("ud_supertag").spec.labels.index(tag)


def perfect_logits(labels: list[np.ndarray], n_classes: int) -> list[np.ndarray]:
    """Logits whose argmax is the gold label wherever the gold label is a class of the head."""
    out = []
    for lab in labels:
        lg = np.zeros((len(lab), n_classes), dtype=np.float32)
        for pos, gold in enumerate(lab):
            if 0 <= gold < n_classes:
                lg[pos, gold] = 1.0
        out.append(lg)
    return out


# -- ud_supertag ---------------------------------------------------------------------------------
def test_ud_supertag_label_set() -> None:
    task = get_task("ud_supertag")
    assert len(UD_SUPERTAGS) == 221
    assert list(UD_SUPERTAGS) == sorted(set(UD_SUPERTAGS))
    assert task.spec.labels == (*UD_SUPERTAGS, UNK_TAG)
    assert task.num_labels == 221  # the head has no output for the gold-only <unk>


def test_ud_supertag_examples(write_data: WriteData, data_dir: Path) -> None:
    write_data("ud-english-ewt/en_ewt-ud-train.conllu", THE_CAT_SLEEPS)
    write_data("ud-english-ewt/en_ewt-ud-dev.conllu", ZERO_PIECE + UNSEEN_TAG)
    task = get_task("ud_supertag")
    assert task.examples(data_dir, "train") == [
        TaggedSentence(
            "train-1", ("The", "cat", "sleeps", "."), ("det>1", "nsubj>1", "root", "punct<1")
        )
    ]
    dev = task.examples(data_dir, "dev")
    assert dev[0].tags == ("det>1", "nsubj>2", "punct>1", "root", "advmod<1", "punct<2")
    assert dev[1].tags == (
        "root", "discourse<1", "discourse<2", "discourse<3-5", "discourse<3-5", "discourse<3-5",
        "discourse<6+", UNK_TAG,
    )  # fmt: skip


def test_ud_supertag_alignment_exact(
    write_data: WriteData, data_dir: Path, tokenizer: object
) -> None:
    write_data("ud-english-ewt/en_ewt-ud-dev.conllu", ZERO_PIECE)
    task = get_task("ud_supertag")
    data = task.encode(task.examples(data_dir, "dev"), tokenizer, 128)
    # <s> ▁The ▁cat [U+007F: nothing] ▁sleep s ▁un beli eva bly ▁ . </s>
    assert data.input_ids[0].tolist() == [0, 581, 7515, 60268, 7, 51, 14473, 5874, 38526, 6, 5, 2]
    assert data.labels[0].tolist() == [
        I, sid("det>1"), sid("nsubj>2"), sid("root"), I, sid("advmod<1"), I, I, I,
        sid("punct<2"), I, I,
    ]  # fmt: skip
    assert data.meta == {"words_without_pieces": 1, "words_truncated": 0, "words_gold_unk": 0}
    # every word with a piece predicted right: the zero-piece word is still an error (5 of 6)
    logits = perfect_logits(data.labels, task.num_labels)
    assert task_metric("accuracy", data, logits) == pytest.approx(5 / 6)


def test_ud_supertag_unseen_dev_tag_is_never_credited(
    write_data: WriteData, data_dir: Path, tokenizer: object
) -> None:
    write_data("ud-english-ewt/en_ewt-ud-dev.conllu", UNSEEN_TAG)
    task = get_task("ud_supertag")
    data = task.encode(task.examples(data_dir, "dev"), tokenizer, 128)
    labels = data.labels[0]
    scored = labels[labels != I]
    assert len(scored) == 8
    assert scored[-1] == task.num_labels == 221  # gold <unk>, past the head's last output
    assert data.meta["words_gold_unk"] == 1
    # the head's logits have num_labels columns: no argmax can equal the <unk> id
    logits = perfect_logits(data.labels, task.num_labels)
    assert task_metric("accuracy", data, logits) == pytest.approx(7 / 8)
    assert 0 < majority_baseline("accuracy", data) < 1


def test_ud_supertag_train_tag_outside_the_set_raises(write_data: WriteData, data_dir: Path):
    write_data("ud-english-ewt/en_ewt-ud-train.conllu", THE_CAT_SLEEPS + UNSEEN_TAG)
    with pytest.raises(DataFormatError) as err:
        get_task("ud_supertag").examples(data_dir, "train")
    assert "'dep<6+'" in err.value.problem and "dev-2" in err.value.problem


# -- cola ----------------------------------------------------------------------------------------
def test_cola(write_data: WriteData, data_dir: Path, tokenizer: object) -> None:
    write_data("cola/raw/in_domain_train.tsv", "gj04\t1\t\tThe cat sleeps.\nbc01\t0\t*\tCat the.\n")
    write_data("cola/raw/in_domain_dev.tsv", "gj04\t0\t*\tSleeps.\n")
    task = get_task("cola")
    assert task.spec.metric == "matthews" and task.num_labels == 2
    train = task.examples(data_dir, "train")
    assert [(ex.text_a, ex.text_b, ex.label) for ex in train] == [
        ("The cat sleeps.", None, 1),
        ("Cat the.", None, 0),
    ]
    assert [ex.id for ex in task.examples(data_dir, "dev")] == ["in_domain_dev.tsv:1"]
    data = task.encode(train, tokenizer, 128)
    assert data.input_ids[0].tolist() == [0, 581, 7515, 60268, 7, 5, 2]  # one segment only
    assert data.labels == [1, 0]


# -- ud_upos_gum ---------------------------------------------------------------------------------
def test_ud_upos_gum(write_data: WriteData, data_dir: Path, tokenizer: object) -> None:
    write_data("ud-english-gum/en_gum-ud-train.from_gum_dep.conllu.gz", THE_CAT_SLEEPS)
    write_data("ud-english-gum/en_gum-ud-dev.conllu.gz", ZERO_PIECE)
    task = get_task("ud_upos_gum")
    assert task.examples(data_dir, "train")[0].tags == ("DET", "NOUN", "VERB", "PUNCT")
    data = task.encode(task.examples(data_dir, "dev"), tokenizer, 128)
    up = task.spec.labels.index
    assert data.labels[0].tolist() == [
        I, up("DET"), up("NOUN"), up("VERB"), I, up("ADV"), I, I, I, up("PUNCT"), I, I
    ]  # fmt: skip
    assert data.meta["words_without_pieces"] == 1


def test_ud_upos_gum_unknown_tag(write_data: WriteData, data_dir: Path) -> None:
    write_data("ud-english-gum/en_gum-ud-dev.conllu.gz", conllu("s", [("Hi", "GREET", 0, "root")]))
    with pytest.raises(DataFormatError, match="unknown UPOS tag 'GREET'"):
        get_task("ud_upos_gum").examples(data_dir, "dev")


# -- ptb_chunking --------------------------------------------------------------------------------
def conll2000_zip(train: str, test: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("conll2000/README", "CoNLL-2000\n")
        archive.writestr("conll2000/train.txt", train)
        archive.writestr("conll2000/test.txt", test)
    return buffer.getvalue()


def test_ptb_chunking(write_data: WriteData, data_dir: Path, tokenizer: object) -> None:
    train = "Confidence NN B-NP\nin IN B-PP\nthe DT B-NP\npound NN I-NP\n\nDogs NNS B-NP\n\n"
    test = "Dogs NNS B-NP\nbark VBP B-VP\n. . O\n\n"
    write_data("nltk-data/packages/corpora/conll2000.zip", conll2000_zip(train, test))
    task = get_task("ptb_chunking")
    assert task.num_labels == 23
    assert task.examples(data_dir, "train") == [
        TaggedSentence(
            "train.txt:1", ("Confidence", "in", "the", "pound"), ("B-NP", "B-PP", "B-NP", "I-NP")
        ),
        TaggedSentence("train.txt:6", ("Dogs",), ("B-NP",)),
    ]
    dev = task.examples(data_dir, "dev")
    data = task.encode(dev, tokenizer, 128)
    ch = task.spec.labels.index
    # <s> ▁Dog s ▁bar k ▁ . </s>
    assert data.input_ids[0].tolist() == [0, 41129, 7, 1909, 92, 6, 5, 2]
    assert data.labels[0].tolist() == [I, ch("B-NP"), I, ch("B-VP"), I, ch("O"), I, I]


def test_ptb_chunking_bad_line(write_data: WriteData, data_dir: Path) -> None:
    write_data("nltk-data/packages/corpora/conll2000.zip", conll2000_zip("a DT\n\n", ""))
    with pytest.raises(DataFormatError) as err:
        get_task("ptb_chunking").examples(data_dir, "train")
    assert err.value.line == 1


# -- ccg_supertag --------------------------------------------------------------------------------
def ccg_leaf(category: str, word: str) -> str:
    return f"(<L {category} XX XX {word} {category}>)"


def ccg_sentence(sent_id: str, leaves: list[tuple[str, str]]) -> str:
    tree = "(<T S 0 2> " + " ".join(ccg_leaf(c, w) for c, w in leaves) + " )"
    return f"ID={sent_id} PARSER=GOLD NUMPARSE=1\n{tree}\n"


def write_ccgbank(write_data: WriteData, dev_leaves: list[tuple[str, str]]) -> None:
    for section in range(2, 22):
        leaves = [("NP", "Vinken"), ("S[dcl]\\NP", "sleeps")]
        if section == 21:
            leaves = [("N/N", "Pierre"), ("N", "Vinken"), (".", ".")]
        rel = f"ccgbank/data/AUTO/{section:02d}/wsj_{section:02d}01.auto"
        write_data(rel, ccg_sentence(f"wsj_{section:02d}01.1", leaves))
    write_data("ccgbank/data/AUTO/00/wsj_0001.auto", ccg_sentence("wsj_0001.1", dev_leaves))


def test_ccg_supertag_labels_from_data(
    write_data: WriteData, data_dir: Path, tokenizer: object
) -> None:
    write_ccgbank(write_data, [("N/N", "Pierre"), ("(S\\NP)/NP", "saw"), (".", ".")])
    task = get_task("ccg_supertag")
    assert task.spec.labels == ()
    with pytest.raises(ValueError, match="with_data_labels"):
        _ = task.num_labels
    files = task.files(data_dir)
    assert len(files) == 21
    assert files["train:02/wsj_0201.auto"] == data_dir / "ccgbank/data/AUTO/02/wsj_0201.auto"
    assert "dev:00/wsj_0001.auto" in files

    labels = (".", "N", "N/N", "NP", "S[dcl]\\NP", UNK_TAG)  # sorted, then <unk>
    assert task.labels_from_data(data_dir) == labels
    bound = task.with_data_labels(data_dir)
    assert bound.spec.labels == labels and bound.num_labels == 5
    assert task.spec.labels == ()  # the registered task is unchanged
    assert len(task.examples(data_dir, "train")) == 20
    dev = bound.examples(data_dir, "dev")
    assert dev[0].tags == ("N/N", UNK_TAG, ".")  # (S\NP)/NP is not in train
    assert task.examples(data_dir, "dev") == dev  # unbound: labels built on the fly

    with pytest.raises(ValueError, match="with_data_labels"):
        task.encode(dev, tokenizer, 128)
    data = bound.encode(dev, tokenizer, 128)
    assert data.meta["words_gold_unk"] == 1
    assert sorted(int(x) for x in data.labels[0] if x != I) == [0, 2, 5]


def test_ccg_supertag_missing_section(write_data: WriteData, data_dir: Path) -> None:
    write_data("ccgbank/data/AUTO/02/wsj_0201.auto", ccg_sentence("wsj_0201.1", [("N", "a")]))
    with pytest.raises(FileNotFoundError, match="section 03"):
        get_task("ccg_supertag").files(data_dir)
