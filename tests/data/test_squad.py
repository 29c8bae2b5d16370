"""SQuAD v1.1 / v2.0 reader: first answer, unanswerable questions, answer offsets checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from xstilts.data.errors import DataFormatError
from xstilts.data.records import SpanExample
from xstilts.data.squad import read_squad

CONTEXT = (
    " Architecturally, the school has a Catholic character. Atop the Main Building is a statue."
)


def squad_file(path: Path, qas: list[dict[str, Any]], version: str = "v2.0") -> Path:
    paragraph = {"context": CONTEXT, "qas": qas}
    root = {"version": version, "data": [{"title": "Notre_Dame", "paragraphs": [paragraph]}]}
    path.write_text(json.dumps(root), encoding="utf-8")
    return path


def answer(text: str) -> dict[str, Any]:
    return {"text": text, "answer_start": CONTEXT.index(text)}


def test_v1_first_answer_and_unstripped_context(tmp_path: Path) -> None:
    qas = [
        {
            "id": "5733be284776f41900661182",
            "question": "What character does the school have?",
            "answers": [answer("Catholic character"), answer("Catholic")],
        }
    ]
    examples = read_squad(squad_file(tmp_path / "dev-v1.1.json", qas, "1.1"))
    start = CONTEXT.index("Catholic character")
    assert examples == [
        SpanExample(
            "5733be284776f41900661182",
            CONTEXT,
            "What character does the school have?",
            "Catholic character",
            start,
        )
    ]
    assert CONTEXT[start : start + len("Catholic character")] == "Catholic character"


def test_v2_unanswerable(tmp_path: Path) -> None:
    qas = [
        {
            "id": "q1",
            "question": "What is atop the Side Building?",
            "answers": [],
            "plausible_answers": [answer("a statue")],
            "is_impossible": True,
        },
        {"id": "q2", "question": "What?", "answers": [answer("a statue")], "is_impossible": False},
    ]
    examples = read_squad(squad_file(tmp_path / "train-v2.0.json", qas))
    assert examples[0] == SpanExample("q1", CONTEXT, "What is atop the Side Building?", "", -1)
    assert (examples[1].answer_text, examples[1].answer_start) == (
        "a statue",
        CONTEXT.index("a statue"),
    )


def test_misplaced_answer_is_an_error(tmp_path: Path) -> None:
    shifted = {"text": "Catholic", "answer_start": CONTEXT.index("Catholic") - 1}
    qas = [{"id": "q1", "question": "Q?", "answers": [answer("Catholic"), shifted]}]
    with pytest.raises(DataFormatError) as err:
        read_squad(squad_file(tmp_path / "a.json", qas))
    assert err.value.problem == (
        "article 0 paragraph 0 (id q1): answer 1 'Catholic' is not at answer_start 34 "
        "(the context there reads ' Catholi')"
    )


@pytest.mark.parametrize(
    ("qa", "fragment"),
    [
        ({"id": "q", "question": "Q?", "answers": []}, "no answers and not is_impossible"),
        (
            {"id": "q", "question": "Q?", "answers": [answer("statue")], "is_impossible": True},
            "is_impossible but has answers",
        ),
        ({"id": "q", "question": "Q?", "answers": [{"text": "x"}]}, "int 'answer_start'"),
        ({"id": "q", "answers": []}, "expected string 'id' and 'question'"),
        (
            {"id": "q", "question": "Q?", "answers": [{"text": "x", "answer_start": 999}]},
            "the context there reads ''",
        ),
    ],
)
def test_malformed_questions(tmp_path: Path, qa: dict[str, Any], fragment: str) -> None:
    with pytest.raises(DataFormatError) as err:
        read_squad(squad_file(tmp_path / "bad.json", [qa]))
    assert fragment in err.value.problem


def test_not_squad_json(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"version": "v2.0",\n "data": {}}', encoding="utf-8")
    with pytest.raises(DataFormatError, match="'data' list"):
        read_squad(path)
    path.write_text('{"version": "v2.0",\n "data": [}', encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        read_squad(path)
    assert err.value.line == 2
