"""Multiple-choice readers: Cosmos QA, HellaSwag, CommonsenseQA and DREAM in upstream formats."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from xstilts.data.errors import DataFormatError
from xstilts.data.multiple_choice import (
    read_commonsenseqa,
    read_cosmosqa,
    read_dream,
    read_hellaswag,
)
from xstilts.data.records import MultipleChoiceExample


def jsonl(records: list[Any]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


COSMOS_HEADER = "id,context,question,answer0,answer1,answer2,answer3,label\n"


def test_cosmosqa_csv(write_file) -> None:
    path = write_file(
        "valid.csv",
        COSMOS_HEADER + 'q1,"Do i need a divorce ? I wanted, you see.",Why ?,A,B,"C, c",D,1\n',
    )
    assert read_cosmosqa(path) == [
        MultipleChoiceExample(
            "q1", "Do i need a divorce ? I wanted, you see.", "Why ?", ("A", "B", "C, c", "D"), 1
        )
    ]


def test_cosmosqa_bad_label_and_field_count(write_file) -> None:
    bad_label = write_file("a.csv", COSMOS_HEADER + "q1,c,q,A,B,C,D,0\nq2,c,q,A,B,C,D,4\n")
    with pytest.raises(DataFormatError) as err:
        read_cosmosqa(bad_label)
    assert (err.value.line, err.value.problem) == (3, "expected a label in 0..3, found '4'")
    short = write_file("b.csv", COSMOS_HEADER + '"multi\nline",q,A,B,C,D,0\n')
    with pytest.raises(DataFormatError) as err:
        read_cosmosqa(short)
    assert (err.value.line, err.value.problem) == (2, "expected 8 CSV fields, found 7")


def test_cosmosqa_unlabeled_jsonl_test(write_file) -> None:
    record = {"id": "t1", "context": "c", "question": "q"}
    record |= {f"answer{i}": f"a{i}" for i in range(4)}
    path = write_file("test.jsonl", jsonl([record]))
    assert read_cosmosqa(path) == [
        MultipleChoiceExample("t1", "c", "q", ("a0", "a1", "a2", "a3"), -1)
    ]


def hellaswag_record(**changes: Any) -> dict[str, Any]:
    record = {
        "ind": 24,
        "activity_label": "Roof shingle removal",
        "ctx_a": "A man is sitting on a roof.",
        "ctx_b": "he",
        "ctx": "A man is sitting on a roof. he",
        "split": "val",
        "split_type": "indomain",
        "endings": ["is using wrap.", "is ripping level tiles off.", "holds a rubik's cube.", "x"],
        "source_id": "activitynet~v_-JhWjGDPHMY",
        "label": 3,
    }
    record.update(changes)
    return record


def test_hellaswag(write_file) -> None:
    unlabeled = hellaswag_record(ind=25)
    del unlabeled["label"]
    path = write_file("hellaswag_val.jsonl", jsonl([hellaswag_record(), unlabeled]))
    examples = read_hellaswag(path)
    assert examples[0] == MultipleChoiceExample(
        "24",
        "A man is sitting on a roof.",
        "he",
        ("is using wrap.", "is ripping level tiles off.", "holds a rubik's cube.", "x"),
        3,
    )
    assert (examples[1].id, examples[1].label) == ("25", -1)


def test_hellaswag_errors(write_file) -> None:
    cases = {
        "label": ([hellaswag_record(), hellaswag_record(label=4)], 2, "0..3"),
        "endings": ([hellaswag_record(endings="abc")], 1, "'endings'"),
        "ctx": ([hellaswag_record(), hellaswag_record(), hellaswag_record(ctx_a=None)], 3, "ctx_a"),
    }
    for name, (records, line, fragment) in cases.items():
        with pytest.raises(DataFormatError) as err:
            read_hellaswag(write_file(f"{name}.jsonl", jsonl(records)))
        assert err.value.line == line
        assert fragment in err.value.problem


def csqa_record(answer: str | None = "B") -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": "075e483d21c29a511267ef62bedc0461",
        "question": {
            "question_concept": "punishing",
            "choices": [
                {"label": "A", "text": "ignore"},
                {"label": "B", "text": "enforce"},
                {"label": "C", "text": "authoritarian"},
                {"label": "D", "text": "yell at"},
                {"label": "E", "text": "avoid"},
            ],
            "stem": "The sanctions against the school were a punishing blow?",
        },
    }
    if answer is not None:
        record["answerKey"] = answer
    return record


def test_commonsenseqa(write_file) -> None:
    path = write_file("dev_rand_split.jsonl", jsonl([csqa_record(), csqa_record(None)]))
    assert read_commonsenseqa(path) == [
        MultipleChoiceExample(
            "075e483d21c29a511267ef62bedc0461",
            "",
            "The sanctions against the school were a punishing blow?",
            ("ignore", "enforce", "authoritarian", "yell at", "avoid"),
            label,
        )
        for label in (1, -1)
    ]


def test_commonsenseqa_unknown_answer_key(write_file) -> None:
    path = write_file("train.jsonl", jsonl([csqa_record(), csqa_record("F")]))
    with pytest.raises(DataFormatError) as err:
        read_commonsenseqa(path)
    assert err.value.line == 2
    assert "'F'" in err.value.problem


def dream_dialogue(answer: str = "To change her job.") -> list[Any]:
    return [
        ["M: How long have you been teaching?", "W: For ten years."],
        [
            {
                "question": "What's the woman probably going to do?",
                "choice": ["To teach a new book.", "To change her job.", "To learn a book."],
                "answer": answer,
            },
            {"question": "How long?", "choice": ["1", "10", "10"], "answer": "1"},
        ],
        "14-349",
    ]


def test_dream(write_file) -> None:
    path = write_file("dev.json", json.dumps([dream_dialogue()], indent=2))
    context = "M: How long have you been teaching?\nW: For ten years."
    assert read_dream(path) == [
        MultipleChoiceExample(
            "14-349_0",
            context,
            "What's the woman probably going to do?",
            ("To teach a new book.", "To change her job.", "To learn a book."),
            1,
        ),
        MultipleChoiceExample("14-349_1", context, "How long?", ("1", "10", "10"), 0),
    ]


def test_dream_errors_name_the_record_or_line(write_file) -> None:
    missing = write_file("a.json", json.dumps([dream_dialogue(), dream_dialogue("Nope.")]))
    with pytest.raises(DataFormatError) as err:
        read_dream(missing)
    assert err.value.line is None
    assert err.value.problem.startswith("dialogue 1 ('14-349') question 0: answer 'Nope.'")
    broken = write_file("b.json", '[\n  [\n    ["M: hi"],\n    [}\n')
    with pytest.raises(DataFormatError) as err:
        read_dream(broken)
    assert err.value.line == 4
    shape = write_file("c.json", json.dumps([["M: hi"]]))
    with pytest.raises(DataFormatError, match=r"dialogue 0: expected \[turns, questions, id\]"):
        read_dream(shape)


@pytest.mark.slow
@pytest.mark.ci
def test_real_cosmosqa_valid(shared_data: Path) -> None:
    examples = read_cosmosqa(shared_data / "cosmosqa" / "valid.csv")
    assert len(examples) == 2985
    assert Counter(e.label for e in examples) == {0: 744, 1: 729, 2: 761, 3: 751}


@pytest.mark.slow
def test_real_dream_question_counts(shared_data: Path) -> None:
    counts = {
        split: len(read_dream(shared_data / "dream" / "data" / f"{split}.json"))
        for split in ("train", "dev", "test")
    }
    assert counts == {"train": 6116, "dev": 2040, "test": 2041}
