"""Tests for xstilts.data.overlap: sentence overlap between training and evaluation sets.
Exact counts on tiny sets, plus the slow real check that PAWS-Wiki test is clean and dev is not."""

from __future__ import annotations

import pytest

from xstilts.data.overlap import (
    DataContaminationError,
    check_no_eval_overlap,
    normalise_whitespace,
    sentence_overlap,
)
from xstilts.data.pawsx import read_pawsx_tsv
from xstilts.data.records import PairExample


def _pairs(*pairs: tuple[str, str | None]) -> list[PairExample]:
    return [PairExample(str(i), a, b, 0) for i, (a, b) in enumerate(pairs)]


TRAIN = _pairs(
    ("The cat sat .", "A cat sat ."),
    ("  The   cat\tsat . ", "Dogs bark ."),  # same first sentence up to whitespace
    ("NS", ""),  # placeholders are not sentences
    ("Birds fly .", None),
)
DEV = _pairs(("The cat sat .", "x"), ("NS", "Other ."))
TEST = _pairs(("Dogs bark .", "The cat sat ."), ("birds fly .", "y"))  # case matters


def test_normalise_whitespace():
    assert normalise_whitespace("  a \t b\n\u00a0c  ") == "a b c"


def test_sentence_overlap_counts_distinct_sentences():
    report = sentence_overlap(TRAIN, {"dev": DEV, "test": TEST})
    assert report.n_train_sentences == 4  # The cat sat / A cat sat / Dogs bark / Birds fly
    assert report.n_shared == 2
    assert report.shared_per_eval_set == {"dev": 1, "test": 2}
    assert report.fraction == 0.5
    assert report.examples == ("Dogs bark .", "The cat sat .")


def test_sentence_overlap_accepts_generators_and_empty_sets():
    report = sentence_overlap(iter(TRAIN), {"dev": iter(DEV), "none": []})
    assert report.shared_per_eval_set == {"dev": 1, "none": 0}
    empty = sentence_overlap([], {"dev": DEV})
    assert (empty.n_train_sentences, empty.n_shared, empty.fraction) == (0, 0, 0.0)


def test_examples_are_capped_at_five():
    many = _pairs(*[(f"s{i}", None) for i in range(20)])
    report = sentence_overlap(many, {"dev": many})
    assert report.n_shared == 20
    assert len(report.examples) == 5


def test_check_passes_under_the_limit_and_returns_the_report():
    report = check_no_eval_overlap("train.tsv", TRAIN, {"dev": DEV}, max_fraction=0.25)
    assert report.n_shared == 1


def test_check_raises_with_a_clear_message():
    with pytest.raises(DataContaminationError) as info:
        check_no_eval_overlap("train.tsv", TRAIN, {"PAWS-X en dev": DEV, "PAWS-X en test": TEST})
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert message.startswith(
        "training file train.tsv shares 2 of 4 sentences (50.0%, limit 1%) with "
        "PAWS-X en test (2), PAWS-X en dev (1)"
    )
    assert "PAWS-Wiki dev contains the PAWS-X dev/test pairs, do not train on it" in message


def test_check_with_zero_tolerance_and_custom_hint():
    with pytest.raises(DataContaminationError, match="use the MNLI train set"):
        check_no_eval_overlap(
            "x", TRAIN, {"dev": DEV}, max_fraction=0.0, hint="use the MNLI train set"
        )
    clean = _pairs(("Nothing shared .", None))
    assert check_no_eval_overlap("x", clean, {"dev": DEV}, max_fraction=0.0).n_shared == 0


@pytest.mark.slow
@pytest.mark.ci
def test_real_paws_wiki_test_is_clean_and_pawsx_dev_is_not(shared_data, tmp_path):
    en = shared_data / "pawsx" / "en"
    eval_sets = {
        "PAWS-X en dev": read_pawsx_tsv(en / "dev_2k.tsv").examples,
        "PAWS-X en test": read_pawsx_tsv(en / "test_2k.tsv").examples,
    }
    train_path = shared_data / "paws-wiki" / "test.tsv"
    report = check_no_eval_overlap(train_path, read_pawsx_tsv(train_path).examples, eval_sets)
    assert report.n_shared == 0
    assert report.n_train_sentences == 6431  # PAWS pairs reuse their source sentences

    # a training file made of PAWS-X en dev rows, as if taken from PAWS-Wiki dev
    bad = tmp_path / "train.tsv"
    bad.write_bytes((en / "dev_2k.tsv").read_bytes())
    with pytest.raises(DataContaminationError) as info:
        check_no_eval_overlap(bad, read_pawsx_tsv(bad).examples, eval_sets)
    assert f"training file {bad} shares 3135 of 3135 sentences (100.0%" in str(info.value)
    assert "PAWS-X en dev (3135)" in str(info.value)
