"""CCGbank `.auto` reader: words and lexical categories, malformed trees named by line."""

from __future__ import annotations

import pytest

from xstilts.data.ccgbank import read_ccgbank_auto, read_ccgbank_split
from xstilts.data.errors import DataFormatError
from xstilts.data.records import TaggedSentence

WSJ_0001_1 = (
    "(<T S[dcl] 0 2> (<T S[dcl] 1 2> (<T NP 0 2> (<L N/N NNP NNP Pierre N_73/N_73>) "
    "(<L N NNP NNP Vinken N>) ) (<T S[dcl]\\NP 0 2> (<L (S[dcl]\\NP)/(S[b]\\NP) MD MD will "
    "(S[dcl]\\NP_10)/(S[b]_11\\NP_10:B)_11>) (<L S[b]\\NP VB VB join S[b]\\NP_2>) ) ) "
    "(<L . . . . .>) ) "
)
WSJ_0001_2 = "(<T S[dcl] 0 2> (<L N NNP NNP Vinken N>) (<L S[dcl]\\NP VBZ VBZ is S[dcl]\\NP_1>) ) "


def test_two_sentences(write_file) -> None:
    path = write_file(
        "wsj_0001.auto",
        f"ID=wsj_0001.1 PARSER=GOLD NUMPARSE=1\n{WSJ_0001_1}\n"
        f"ID=wsj_0001.2 PARSER=GOLD NUMPARSE=1\n{WSJ_0001_2}\n",
    )
    assert read_ccgbank_auto(path) == [
        TaggedSentence(
            "wsj_0001.1",
            ("Pierre", "Vinken", "will", "join", "."),
            ("N/N", "N", "(S[dcl]\\NP)/(S[b]\\NP)", "S[b]\\NP", "."),
        ),
        TaggedSentence("wsj_0001.2", ("Vinken", "is"), ("N", "S[dcl]\\NP")),
    ]


@pytest.mark.parametrize(
    ("tree", "fragment"),
    [
        ("(<T S 0 2> (<L N NNP Vinken N>) )", "leaf at column 12 should be (<L category"),
        ("(<T S 0 2> (<L N NNP NNP Vinken N) )", "leaf at column 12 has no closing '>)'"),
        ("(<T S 0 2> (<L N NNP NNP Vinken N>) ) )", "unmatched ')' at column 39"),
        ("(<T S 0 2> (<L N NNP NNP Vinken N>)", "1 unclosed '(<T' node(s)"),
        ("(<T S 0> (<L N NNP NNP Vinken N>) )", "node at column 1 should be (<T category"),
        ("(<T S 0 2> Vinken )", "unexpected 'Vinken )' at column 12"),
        ("(<T S 0 2> )", "tree has no (<L ...>) leaves"),
    ],
)
def test_malformed_tree_names_line(write_file, tree: str, fragment: str) -> None:
    path = write_file(
        "bad.auto",
        f"ID=wsj_0001.2 PARSER=GOLD NUMPARSE=1\n{WSJ_0001_2}\nID=wsj_0001.3 PARSER=GOLD\n{tree}\n",
    )
    with pytest.raises(DataFormatError) as err:
        read_ccgbank_auto(path)
    assert err.value.line == 4
    assert fragment in err.value.problem


def test_id_and_tree_lines_must_alternate(write_file) -> None:
    two_ids = write_file("a.auto", "ID=a.1 PARSER=GOLD\nID=a.2 PARSER=GOLD\n")
    with pytest.raises(DataFormatError) as err:
        read_ccgbank_auto(two_ids)
    assert (err.value.line, err.value.problem) == (2, "expected the tree of a.1 (line 1)")
    no_id = write_file("b.auto", f"{WSJ_0001_2}\n")
    with pytest.raises(DataFormatError) as err:
        read_ccgbank_auto(no_id)
    assert err.value.line == 1
    no_tree = write_file("c.auto", f"ID=a.1 PARSER=GOLD\n{WSJ_0001_2}\n\nID=a.2 PARSER=GOLD\n")
    with pytest.raises(DataFormatError) as err:
        read_ccgbank_auto(no_tree)
    assert (err.value.line, err.value.problem) == (4, "a.2 has no tree line")


def test_split_reads_sections_in_order(write_file) -> None:
    for name in ("wsj_0002", "wsj_0001"):
        path = write_file(f"AUTO/00/{name}.auto", f"ID={name}.1 PARSER=GOLD\n{WSJ_0001_2}\n")
    auto = path.parent.parent
    assert [s.id for s in read_ccgbank_split(auto, "dev")] == ["wsj_0001.1", "wsj_0002.1"]
    with pytest.raises(FileNotFoundError, match="section 23"):
        read_ccgbank_split(auto, "test")
    with pytest.raises(KeyError):
        read_ccgbank_split(auto, "validation")
