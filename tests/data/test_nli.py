"""Tests for xstilts.data.nli: XNLI/XTREME TSV, GLUE MNLI TSV and the MNLI dev-matched copy.
Synthetic files in each upstream layout, plus slow label counts of the shared copies."""

from __future__ import annotations

from collections import Counter

import pytest

from xstilts.data.errors import DataFormatError
from xstilts.data.nli import NLI_LABELS, nli_label_id, read_mnli_tsv, read_xnli_tsv
from xstilts.data.records import PairExample

GLUE_HEADER = (
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
    "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label"
)


def _glue_row(index: int, pair_id: str, s1: str, s2: str, label1: str, gold: str) -> str:
    return "\t".join([str(index), "31193", pair_id, "fiction", "( x )", "( y )", "(ROOT x)",
                      "(ROOT y)", s1, s2, label1, gold])  # fmt: skip


def test_label_order_is_fixed():
    assert NLI_LABELS == ("entailment", "neutral", "contradiction")
    assert [nli_label_id(n, "f", 1) for n in NLI_LABELS] == [0, 1, 2]
    assert nli_label_id("contradictory", "f", 1) == 2


def test_xnli_three_columns_no_header(write_file):
    path = write_file(
        "dev-en.tsv",
        "And he said, Mama, I'm home.\tHe called his mom.\tneutral\n"
        'He said "no".\tHe didn\'t say a word.\tcontradiction\n'
        "\n"
        "A man.\tA person.\tentailment\n",
    )
    result = read_xnli_tsv(path)
    assert result.examples == [
        PairExample("1", "And he said, Mama, I'm home.", "He called his mom.", 1),
        PairExample("2", 'He said "no".', "He didn't say a word.", 2),  # quotes are data
        PairExample("4", "A man.", "A person.", 0),
    ]
    assert result.skipped_no_gold == 0


def test_xnli_header_of_the_mnli_copy_is_skipped(write_file):
    path = write_file("train-en.tsv", "premise\thypo\tlabel\r\nA\tB\tcontradictory\r\n")
    assert read_xnli_tsv(path).examples == [PairExample("2", "A", "B", 2)]


def test_xnli_gz(write_file):
    path = write_file("dev-en.tsv.gz", "A\tB\tentailment\n")
    assert read_xnli_tsv(path).examples == [PairExample("1", "A", "B", 0)]


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("A\tB\tneutral\nA\tB\n", 2, "expected 3 tab-separated fields"),
        ("A\tB\tneutral\nA\tB\tneutral\t1\n", 2, "expected 3 tab-separated fields"),
        ("A\tB\tneutral\n\nA\tB\tNeutral\n", 3, "unknown NLI label 'Neutral'"),
        ("A\tB\tentailment\nA\tB\t1\n", 2, "unknown NLI label '1'"),
        ("premise\thypothesis\tlabel\nA\tB\t\n", 2, "unknown NLI label ''"),
        ("A\tB\tneutral\npremise\thypo\tlabel\n", 2, "unknown NLI label 'label'"),
        (b"A\tB\tneutral\nA\t\xff\tneutral\n", 2, "UTF-8"),
    ],
)
def test_xnli_malformed(write_file, text, line, problem):
    path = write_file("dev-en.tsv", text)
    with pytest.raises(DataFormatError) as info:
        read_xnli_tsv(path)
    assert (info.value.path, info.value.line) == (str(path), line)
    assert problem in info.value.problem


def test_glue_mnli_columns_ids_and_no_gold_rows(write_file):
    rows = [
        GLUE_HEADER,
        _glue_row(
            0,
            "31193n",
            "Conceptually cream skimming ...",
            "Product and geography .",
            "neutral",
            "neutral",
        ),
        _glue_row(1, "101457e", 'He said "yes" .', "He agreed .", "entailment", "entailment"),
        _glue_row(2, "134793e", "A", "B", "neutral", "-"),
        _glue_row(3, "37397e", "C", "D", "contradiction", "contradiction"),
    ]
    result = read_mnli_tsv(write_file("train.tsv", "\n".join(rows) + "\n"))
    assert result.examples == [
        PairExample("31193n", "Conceptually cream skimming ...", "Product and geography .", 1),
        PairExample("101457e", 'He said "yes" .', "He agreed .", 0),
        PairExample("37397e", "C", "D", 2),
    ]
    assert result.skipped_no_gold == 1


def test_mnli_dev_matched_layout(write_file):
    text = (
        "index\tpremise\thypothesis\tgold_label\tnumber of correct responses (out of 100)\n"
        "0\tThe new rights are nice enough\tEveryone likes the newest benefits \tneutral\t100\n"
        '28\tShe seemed so different  "\tShe had changed.\tneutral\t97\n'
        "29\tX\tY\t-\t0\n"
    )
    result = read_mnli_tsv(write_file("dev.txt", text))
    assert result.examples == [
        PairExample(
            "0", "The new rights are nice enough", "Everyone likes the newest benefits ", 1
        ),
        PairExample("28", 'She seemed so different  "', "She had changed.", 1),
    ]
    assert result.skipped_no_gold == 1


def test_mnli_without_id_column_uses_line_numbers(write_file):
    text = "sentence1\tsentence2\tgold_label\nA\tB\tentailment\n\nC\tD\tneutral\n"
    result = read_mnli_tsv(write_file("m.tsv", text))
    assert [e.id for e in result.examples] == ["2", "4"]


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("sentence1\tsentence2\tlabel\nA\tB\tneutral\n", 1, "none of the columns ['gold_label']"),
        ("index\tsentence2\tgold_label\n0\tB\tneutral\n", 1, "none of the columns ['sentence1'"),
        ("index\tpremise\tgold_label\n0\tB\tneutral\n", 1, "none of the columns ['sentence2'"),
        ("index\tpremise\thypothesis\tgold_label\n0\tA\tB\tneutral\n1\tA\tB\n", 3,
         "expected 4 tab-separated fields"),
        ("index\tpremise\thypothesis\tgold_label\n0\tA\tB\tneutral\n1\tA\tB\tunknown\n", 3,
         "unknown NLI label 'unknown'"),
        ("index\tpremise\thypothesis\tgold_label\n0\tA\tB\tneutral\n0\tC\tD\tneutral\n", 3,
         "duplicate id '0' (first on line 2)"),
        ("index\tpremise\thypothesis\tgold_label\n\tA\tB\tneutral\n", 2, "empty id"),
    ],
)  # fmt: skip
def test_mnli_malformed(write_file, text, line, problem):
    path = write_file("m.tsv", text)
    with pytest.raises(DataFormatError) as info:
        read_mnli_tsv(path)
    assert (info.value.path, info.value.line) == (str(path), line)
    assert problem in info.value.problem


def test_mnli_empty_file(write_file):
    with pytest.raises(DataFormatError, match="empty file"):
        read_mnli_tsv(write_file("m.tsv", ""))


# ------------------------------------------------------------------------------- real data


@pytest.mark.slow
@pytest.mark.ci
def test_real_xnli_en_dev(shared_data):
    result = read_xnli_tsv(shared_data / "xnli-en" / "dev-en.tsv")
    assert len(result.examples) == 2490
    assert Counter(e.label for e in result.examples) == {0: 830, 1: 830, 2: 830}


@pytest.mark.slow
@pytest.mark.ci
def test_real_mnli_dev_matched(shared_data):
    path = shared_data / "mnli-dev-matched" / "mnli_development_set_number_of_correct_responses.txt"
    result = read_mnli_tsv(path)
    assert len(result.examples) == 9815
    assert result.skipped_no_gold == 0
    assert Counter(e.label for e in result.examples) == {0: 3479, 1: 3123, 2: 3213}
