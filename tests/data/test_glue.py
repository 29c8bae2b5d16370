"""GLUE-style TSV reader: each task's layouts, and malformed rows named by line."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from xstilts.data.errors import DataFormatError
from xstilts.data.glue import read_glue_tsv
from xstilts.data.records import PairExample


def test_cola_headerless_four_columns(write_file) -> None:
    path = write_file(
        "in_domain_dev.tsv",
        "gj04\t1\t\tThe sailors rode the breeze clear of the rocks.\n"
        "gj04\t0\t*\tThe more does Bill smoke.\n",
    )
    assert read_glue_tsv(path, "cola") == [
        PairExample(
            "in_domain_dev.tsv:1", "The sailors rode the breeze clear of the rocks.", None, 1
        ),
        PairExample("in_domain_dev.tsv:2", "The more does Bill smoke.", None, 0),
    ]


def test_cola_bad_label_names_line(write_file) -> None:
    path = write_file("train.tsv", "gj04\t1\t\tA fine one.\ngj04\t2\t*\tBad label.\n")
    with pytest.raises(DataFormatError) as err:
        read_glue_tsv(path, "cola")
    assert err.value.line == 2
    assert "'2'" in err.value.problem


def test_cola_wrong_column_count_names_line(write_file) -> None:
    path = write_file("train.tsv", "gj04\t1\t\tOk.\n\ngj04\t1\tOnly three.\n")
    with pytest.raises(DataFormatError) as err:
        read_glue_tsv(path, "cola")
    assert (err.value.line, err.value.problem) == (3, "expected 4 tab-separated fields, found 3")


def test_mrpc_bom_crlf_and_quotes(write_file) -> None:
    path = write_file(
        "msr_paraphrase_train.txt",
        "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n"
        '1\t702876\t702977\tHe called "the witness.\tOnly "the witness", he said.\r\n'
        "0\t1\t2\ta\tb\r\n",
    )
    assert read_glue_tsv(path, "mrpc") == [
        PairExample("702876-702977", 'He called "the witness.', 'Only "the witness", he said.', 1),
        PairExample("1-2", "a", "b", 0),
    ]


def test_mrpc_requires_its_header(write_file) -> None:
    path = write_file("mrpc.tsv", "1\t1\t2\ta\tb\n")
    with pytest.raises(DataFormatError) as err:
        read_glue_tsv(path, "mrpc")
    assert err.value.line == 1
    assert "header" in err.value.problem


def test_sst2_keeps_text_and_reads_unlabeled_test(write_file) -> None:
    labeled = write_file("dev.tsv", "sentence\tlabel\nit 's charming . \t1\n")
    unlabeled = write_file("test.tsv", "index\tsentence\n0\tuneasy mishmash .\n")
    assert read_glue_tsv(labeled, "sst2") == [
        PairExample("dev.tsv:2", "it 's charming . ", None, 1)
    ]
    assert read_glue_tsv(unlabeled, "sst2") == [PairExample("0", "uneasy mishmash .", None, -1)]


QQP_HEADER = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"


def test_qqp_with_and_without_header(write_file) -> None:
    row = "7\t15\t16\tHow do I read?\tHow can I read?\t1\n"
    expected = [PairExample("7", "How do I read?", "How can I read?", 1)]
    assert read_glue_tsv(write_file("a.tsv", QQP_HEADER + row), "qqp") == expected
    assert read_glue_tsv(write_file("b.tsv", row), "qqp") == expected


def test_qqp_label_glued_to_question_raises_or_is_skipped_with_warning(write_file) -> None:
    path = write_file(
        "new_dev.tsv",
        "1\t2\t3\tq1\tq2\t0\n133273\t213221\t213222\tHow is it?\tWhich level? 0\n",
    )
    with pytest.raises(DataFormatError) as err:
        read_glue_tsv(path, "qqp")
    assert (err.value.line, err.value.problem) == (2, "expected 6 tab-separated fields, found 5")
    with pytest.warns(UserWarning, match=r"skipped 1 malformed qqp row\(s\) at line\(s\) 2"):
        examples = read_glue_tsv(path, "qqp", skip_malformed=True)
    assert examples == [PairExample("1", "q1", "q2", 0)]


def test_rte_qnli_entailment_labels(write_file) -> None:
    rte = write_file(
        "rte.tsv",
        "index\tsentence1\tsentence2\tlabel\n0\tP.\tH.\tnot_entailment\n1\tP2.\tH2.\tentailment\n",
    )
    qnli = write_file(
        "qnli.tsv",
        "index\tquestion\tsentence\tlabel\n0\tWhat?\tThis.\tentailment\n1\tQ?\tS.\tcontradiction\n",
    )
    assert [e.label for e in read_glue_tsv(rte, "rte")] == [1, 0]
    with pytest.raises(DataFormatError) as err:
        read_glue_tsv(qnli, "qnli")
    assert err.value.line == 3
    assert "'contradiction'" in err.value.problem


def test_rte_headerless_train_part_and_unlabeled_test(write_file) -> None:
    part = write_file("val.tsv", "2\tP.\tH.\tentailment\n")
    test = write_file("test.tsv", "index\tsentence1\tsentence2\n0\tP.\tH.\n")
    assert read_glue_tsv(part, "rte") == [PairExample("2", "P.", "H.", 0)]
    assert read_glue_tsv(test, "rte") == [PairExample("0", "P.", "H.", -1)]


def test_unknown_task_and_empty_file(write_file) -> None:
    with pytest.raises(KeyError):
        read_glue_tsv(write_file("x.tsv", ""), "wnli")
    with pytest.raises(DataFormatError, match="empty file"):
        read_glue_tsv(write_file("y.tsv", "\n"), "cola")


@pytest.mark.slow
@pytest.mark.ci
def test_real_cola_counts(shared_data: Path) -> None:
    counts = {
        name: len(read_glue_tsv(shared_data / "cola" / "raw" / f"{name}.tsv", "cola"))
        for name in ("in_domain_train", "in_domain_dev", "out_of_domain_dev")
    }
    assert counts == {"in_domain_train": 8551, "in_domain_dev": 527, "out_of_domain_dev": 516}


@pytest.mark.slow
def test_real_mrpc_sst2_rte_qnli_counts(shared_data: Path) -> None:
    def labels(relative: str, task: str) -> Counter[int]:
        return Counter(e.label for e in read_glue_tsv(shared_data / relative, task))

    assert labels("mrpc/msr_paraphrase_train.txt", "mrpc") == {1: 2753, 0: 1323}
    assert labels("mrpc/msr_paraphrase_test.txt", "mrpc") == {1: 1147, 0: 578}
    assert labels("sst2/train_full.tsv", "sst2") == {0: 29780, 1: 37569}
    assert sum(labels("sst2/dev.tsv", "sst2").values()) == 872
    assert sum(labels("sst2/test-labeled.tsv", "sst2").values()) == 1821
    train = labels("rte/train.tsv", "rte") + labels("rte/val.tsv", "rte")
    assert train == {0: 1249, 1: 1241}
    assert labels("rte/dev.tsv", "rte") == {0: 146, 1: 131}
    assert labels("rte/test.tsv", "rte") == {-1: 3000}
    assert labels("qnli/dev.tsv", "qnli") == {0: 2702, 1: 2761}


@pytest.mark.slow
def test_real_qqp_subset_has_one_malformed_row(shared_data: Path) -> None:
    path = shared_data / "qqp-subset" / "new_dev.tsv"
    with pytest.raises(DataFormatError) as err:
        read_glue_tsv(path, "qqp")
    assert err.value.line == 1
    with pytest.warns(UserWarning, match=r"at line\(s\) 1$"):
        examples = read_glue_tsv(path, "qqp", skip_malformed=True)
    assert Counter(e.label for e in examples) == {0: 14749, 1: 8747}
