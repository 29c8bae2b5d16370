"""ANLI readers: the analysis CSV (multi-line quoted fields) and the official JSONL."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from xstilts.data.anli import read_anli
from xstilts.data.errors import DataFormatError
from xstilts.data.records import PairExample

CSV_HEADER = "context,statement,reason,gold_label,uid,tags\r\n"


def test_csv_columns_by_name_and_multiline_fields(write_file) -> None:
    path = write_file(
        "ANLI_analysis_r1_dev.csv",
        CSV_HEADER
        + '"Linguistics, the ""study""\nof language.",Form matters.,"Reason\nhere",c,u1,[]\r\n'
        + "A plain premise.,A hypothesis.,r,e,u2,[]\r\n"
        + "P,H,r,n,u3,[]\r\n",
    )
    assert read_anli(path) == [
        PairExample("u1", 'Linguistics, the "study"\nof language.', "Form matters.", 2),
        PairExample("u2", "A plain premise.", "A hypothesis.", 0),
        PairExample("u3", "P", "H", 1),
    ]


def test_csv_bad_label_reports_the_line_the_record_starts_on(write_file) -> None:
    path = write_file(
        "r2.csv",
        CSV_HEADER
        + '"two\nline premise",H,"three\nline\nreason",e,u1,[]\r\n'
        + '"another\npremise",H,r,x,u2,[]\r\n',
    )
    with pytest.raises(DataFormatError) as err:
        read_anli(path)
    assert err.value.line == 6
    assert "'x'" in err.value.problem


def test_csv_wrong_field_count_and_unterminated_quote(write_file) -> None:
    short = write_file("a.csv", CSV_HEADER + "P,H,r,e,u1,[]\r\nP,H,e,u2\r\n")
    with pytest.raises(DataFormatError) as err:
        read_anli(short)
    assert (err.value.line, err.value.problem) == (3, "expected 6 CSV fields, found 4")
    broken = write_file("b.csv", CSV_HEADER + 'P,H,r,e,u1,[]\r\n"P\nH,r,n,u2,[]\r\n')
    with pytest.raises(DataFormatError) as err:
        read_anli(broken)
    assert err.value.line == 3
    assert "malformed CSV record" in err.value.problem


def test_csv_missing_column(write_file) -> None:
    path = write_file("c.csv", "context,statement,uid\r\nP,H,u\r\n")
    with pytest.raises(DataFormatError) as err:
        read_anli(path)
    assert err.value.line == 1
    assert "gold_label" in err.value.problem


def test_jsonl_official_format_gzipped(write_file) -> None:
    lines = [
        {"uid": "a1", "premise": "P1", "hypothesis": "H1", "label": "n", "reason": ""},
        {"uid": "a2", "premise": "P2", "hypothesis": "H2", "label": "c"},
    ]
    path = write_file("dev.jsonl.gz", "".join(json.dumps(line) + "\n" for line in lines))
    assert read_anli(path) == [PairExample("a1", "P1", "H1", 1), PairExample("a2", "P2", "H2", 2)]


def test_jsonl_errors_name_lines(write_file) -> None:
    good = json.dumps({"uid": "a", "premise": "P", "hypothesis": "H", "label": "e"})
    bad_label = json.dumps({"uid": "b", "premise": "P", "hypothesis": "H", "label": "entailment"})
    no_premise = json.dumps({"uid": "c", "hypothesis": "H", "label": "e"})
    cases = {
        "label.jsonl": (f"{good}\n{bad_label}\n", 2, "'entailment'"),
        "field.jsonl": (f"{good}\n\n{no_premise}\n", 3, "'premise'"),
        "json.jsonl": (f"{good}\n{{not json\n", 2, "not valid JSON"),
    }
    for name, (text, line, fragment) in cases.items():
        with pytest.raises(DataFormatError) as err:
            read_anli(write_file(name, text))
        assert err.value.line == line
        assert fragment in err.value.problem


def test_unknown_extension(write_file) -> None:
    with pytest.raises(DataFormatError, match=r"\.csv or \.jsonl"):
        read_anli(write_file("dev.tsv", ""))


@pytest.mark.slow
@pytest.mark.ci
def test_real_anli_rounds(shared_data: Path) -> None:
    rounds = [read_anli(shared_data / "anli" / f"ANLI_analysis_r{r}_dev.csv") for r in (1, 2, 3)]
    assert [len(examples) for examples in rounds] == [1000, 1000, 1198]
    assert Counter(e.label for e in rounds[2]) == {0: 402, 1: 400, 2: 396}
    assert all(len({e.id for e in examples}) == len(examples) for examples in rounds)
