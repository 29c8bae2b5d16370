"""UD supertags on hand-made trees with exact expected tags, and the tag set of EWT train."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from xstilts.data.supertags import (
    SUPERTAG_DEFINITION,
    distance_bucket,
    ud_supertag_sentence,
    ud_supertags,
)


def test_definition_examples_hold() -> None:
    # The cat sleeps .
    assert ud_supertags([2, 3, 0, 3], ["det", "nsubj", "root", "punct"]) == [
        "det>1",
        "nsubj>1",
        "root",
        "punct<1",
    ]
    assert "det>1, cat = nsubj>1, sleeps = root, . = punct<1" in SUPERTAG_DEFINITION


def test_subtypes_dropped_and_distance_buckets() -> None:
    # 1 John 2 's 3 very 4 old 5 dog 6 was 7 seen 8 by 9 the 10 neighbour 11 yesterday 12 .
    heads = [5, 1, 4, 5, 7, 7, 0, 10, 10, 7, 7, 7]
    deprels = [
        "nmod:poss",
        "case",
        "advmod",
        "amod",
        "nsubj:pass",
        "aux:pass",
        "root",
        "case",
        "det",
        "obl:agent",
        "obl:tmod",
        "punct",
    ]
    assert ud_supertags(heads, deprels) == [
        "nmod>3-5",
        "case<1",
        "advmod>1",
        "amod>1",
        "nsubj>2",
        "aux>1",
        "root",
        "case>2",
        "det>1",
        "obl<3-5",
        "obl<3-5",
        "punct<3-5",
    ]


def test_far_heads_are_six_plus() -> None:
    heads = [0] + [1] * 7
    deprels = ["root"] + ["dep"] * 7
    assert ud_supertags(heads, deprels) == [
        "root",
        "dep<1",
        "dep<2",
        "dep<3-5",
        "dep<3-5",
        "dep<3-5",
        "dep<6+",
        "dep<6+",
    ]
    assert [distance_bucket(d) for d in (1, 2, 3, 5, 6, 40)] == ["1", "2", "3-5", "3-5", "6+", "6+"]
    with pytest.raises(ValueError):
        distance_bucket(0)


@pytest.mark.parametrize(
    ("heads", "deprels", "fragment"),
    [
        ([0, 1], ["root"], "2 heads but 1 relations"),
        ([0, 3], ["root", "obj"], "head 3 is not another word of 2"),
        ([0, 2], ["root", "obj"], "head 2 is not another word of 2"),
        ([0, 1], ["root", "root"], "word 2: head 1 with relation 'root'"),
        ([2, 0], ["nsubj", "obj"], "word 2: head 0 with relation 'obj'"),
        ([0, 1], ["root", "_"], "missing relation '_'"),
        ([0, 1], ["root", ""], "missing relation ''"),
    ],
)
def test_invalid_trees(heads: list[int], deprels: list[str], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        ud_supertags(heads, deprels)


def test_sentence_from_conllu(tmp_path: Path) -> None:
    from xstilts.data.conllu import read_conllu

    path = tmp_path / "s.conllu"
    rows = [
        "# sent_id = s1",
        "1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_",
        "2-3\tcat's\t_\t_\t_\t_\t_\t_\t_\t_",
        "2\tcat\tcat\tNOUN\tNN\t_\t4\tnsubj\t_\t_",
        "3\t's\tbe\tAUX\tVBZ\t_\t4\tcop\t_\t_",
        "4\there\there\tADV\tRB\t_\t0\troot\t_\t_",
        "4.1\tnow\tnow\tADV\tRB\t_\t_\t_\t4:advmod\t_",
    ]
    path.write_text("\n".join(rows) + "\n\n", encoding="utf-8")
    (sentence,) = read_conllu(path)
    tagged = ud_supertag_sentence(sentence)
    assert (tagged.id, tagged.words) == ("s1", ("The", "cat", "'s", "here"))
    assert tagged.tags == ("det>1", "nsubj>2", "cop>1", "root")


@pytest.mark.slow
@pytest.mark.ci
def test_tag_set_size_on_ewt_train(shared_data: Path) -> None:
    from xstilts.data.conllu import read_conllu

    sentences = read_conllu(shared_data / "ud-english-ewt" / "en_ewt-ud-train.conllu")
    counts = Counter(tag for s in sentences for tag in ud_supertag_sentence(s).tags)
    assert len(sentences) == 12544
    assert counts["root"] == 12544
    assert len(counts) == 221
    assert sum(1 for n in counts.values() if n >= 10) == 177
