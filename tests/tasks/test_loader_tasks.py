"""Tasks whose data users bring (MNLI, SQuAD 1.1/2.0, HellaSwag, CommonsenseQA): tiny files in
the upstream layout under a data dir, examples and encodings, and exact answer token spans."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xstilts.data.errors import DataFormatError
from xstilts.data.records import MultipleChoiceExample, PairExample, SpanExample
from xstilts.evaluate import task_metric
from xstilts.tasks.registry import get_task

WriteData = Callable[[str, str | bytes], Path]


def jsonl(records: list[Any]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


# -- mnli ----------------------------------------------------------------------------------------
GLUE_MNLI_HEADER = (
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
    "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n"
)


def glue_mnli_row(index: int, pair_id: str, s1: str, s2: str, gold: str) -> str:
    return f"{index}\t1\t{pair_id}\tfiction\t( b )\t( b )\t(ROOT)\t(ROOT)\t{s1}\t{s2}\t{gold}\t{gold}\n"


def test_mnli_glue_layout(write_data: WriteData, data_dir: Path, tokenizer: object) -> None:
    write_data(
        "MNLI/train.tsv",
        GLUE_MNLI_HEADER
        + glue_mnli_row(0, "31193n", "Conceptually cream skimming.", "Product and geography.", "neutral")
        + glue_mnli_row(1, "101457e", 'you know "during" the season', "You lose things.", "entailment"),
    )  # fmt: skip
    write_data(
        "MNLI/dev_matched.tsv",
        GLUE_MNLI_HEADER
        + glue_mnli_row(0, "63735n", "The new rights are nice.", "Everyone likes them.", "-")
        + glue_mnli_row(1, "91383c", "This site lists winners.", "It is unsearchable.", "contradiction"),
    )  # fmt: skip
    task = get_task("mnli")
    assert task.num_labels == 3
    assert task.examples(data_dir, "train") == [
        PairExample("31193n", "Conceptually cream skimming.", "Product and geography.", 1),
        PairExample("101457e", 'you know "during" the season', "You lose things.", 0),
    ]
    dev = task.examples(data_dir, "dev")  # the "-" row (no gold label) is left out
    assert dev == [PairExample("91383c", "This site lists winners.", "It is unsearchable.", 2)]
    data = task.encode(dev, tokenizer, 128)
    assert data.input_ids[0].tolist() == tokenizer(dev[0].text_a, dev[0].text_b)["input_ids"]


def test_mnli_missing_file_names_the_layout(data_dir: Path) -> None:
    with pytest.raises(FileNotFoundError):
        get_task("mnli").examples(data_dir, "train")
    assert get_task("mnli").files(data_dir)["train"] == data_dir / "MNLI" / "train.tsv"


# -- squad / squad_v2 ----------------------------------------------------------------------------
CONTEXT = "It was written by Jane Austen in 1813."


def squad_file(qas: list[dict[str, Any]], version: str = "1.1") -> str:
    paragraph = {"context": CONTEXT, "qas": qas}
    return json.dumps({"version": version, "data": [{"title": "P", "paragraphs": [paragraph]}]})


def qa(qa_id: str, question: str, answers: list[tuple[str, int]], **extra: Any) -> dict:
    return {
        "id": qa_id,
        "question": question,
        "answers": [{"text": t, "answer_start": s} for t, s in answers],
        **extra,
    }


def test_squad_answer_token_span(write_data: WriteData, data_dir: Path, tokenizer: object) -> None:
    write_data(
        "squad/train-v1.1.json",
        squad_file([qa("q1", "Who wrote it?", [("Jane Austen", 18)])]),
    )
    write_data(
        "squad/dev-v1.1.json",
        squad_file([qa("q2", "When?", [("1813", 33), ("in 1813", 30)])]),
    )
    task = get_task("squad")
    assert task.spec.head == "span" and task.spec.metric == "span_exact"
    train = task.examples(data_dir, "train")
    assert train == [SpanExample("q1", CONTEXT, "Who wrote it?", "Jane Austen", 18)]
    data = task.encode(train, tokenizer, 128)
    # <s> ▁Who ▁wrote ▁it ? </s> </s> ▁It ▁was ▁written ▁by ▁Jane ▁A usten ▁in ▁18 13 . </s>
    #  0   1    2      3   4  5    6    7   8    9        10   11    12 13    14  15  16 17 18
    assert data.input_ids[0].tolist() == [
        0, 40469, 54397, 442, 32, 2, 2, 1650, 509, 59121, 390, 48511, 62, 43738, 23, 543, 2681,
        5, 2,
    ]  # fmt: skip
    assert data.labels == [(11, 13)]  # "▁Jane" .. "usten"
    dev = task.encode(task.examples(data_dir, "dev"), tokenizer, 128)
    # <s> ▁When ? </s> </s> ▁It ... ▁in ▁18 13 . </s>: the first answer is "▁18" "13"
    assert dev.labels == [(13, 14)]
    logits = np.zeros((len(dev.input_ids[0]), 2), dtype=np.float32)
    logits[13, 0] = logits[14, 1] = 1.0
    assert task_metric("span_exact", dev, [logits]) == 1.0


def test_squad_answer_cut_off_by_truncation_points_at_s(
    write_data: WriteData, data_dir: Path, tokenizer: object
) -> None:
    write_data("squad/train-v1.1.json", squad_file([qa("q1", "When?", [("1813", 33)])]))
    task = get_task("squad")
    data = task.encode(task.examples(data_dir, "train"), tokenizer, 12)
    assert len(data.input_ids[0]) == 12 and data.labels == [(0, 0)]


def test_squad_v1_rejects_a_v2_file(write_data: WriteData, data_dir: Path) -> None:
    write_data(
        "squad/dev-v1.1.json",
        squad_file([qa("q9", "Why?", [], is_impossible=True)], version="v2.0"),
    )
    with pytest.raises(DataFormatError, match="squad_v2"):
        get_task("squad").examples(data_dir, "dev")


def test_squad_v2_unanswerable(write_data: WriteData, data_dir: Path, tokenizer: object) -> None:
    qas = [
        qa("a1", "Who wrote it?", [("Jane Austen", 18)], is_impossible=False),
        qa("u1", "Who read it?", [], is_impossible=True, plausible_answers=[]),
    ]
    write_data("squad/train-v2.0.json", squad_file(qas, version="v2.0"))
    write_data("squad/dev-v2.0.json", squad_file(qas[1:], version="v2.0"))
    task = get_task("squad_v2")
    train = task.examples(data_dir, "train")
    assert train[1] == SpanExample("u1", CONTEXT, "Who read it?", "", -1)
    data = task.encode(train, tokenizer, 128)
    assert data.labels == [(11, 13), (0, 0)]
    assert len(task.examples(data_dir, "dev")) == 1


# -- hellaswag -----------------------------------------------------------------------------------
def hellaswag_record(ind: int, label: int, n_endings: int = 4) -> dict[str, Any]:
    return {
        "ind": ind,
        "activity_label": "Roof shingle removal",
        "ctx_a": "A man is sitting on a roof.",
        "ctx_b": "he",
        "ctx": "A man is sitting on a roof. he",
        "split": "train",
        "split_type": "indomain",
        "endings": [
            "is using wrap.",
            "is ripping shingles.",
            "is holding a rubix cube.",
            "starts.",
        ][:n_endings],
        "source_id": "activitynet~v_-JhWjGDPHMY",
        "label": label,
    }


def test_hellaswag(write_data: WriteData, data_dir: Path, tokenizer: object) -> None:
    write_data("hellaswag/hellaswag_train.jsonl", jsonl([hellaswag_record(4, 3)]))
    write_data("hellaswag/hellaswag_val.jsonl", jsonl([hellaswag_record(24, 1)]))
    task = get_task("hellaswag")
    assert task.num_labels == 4
    dev = task.examples(data_dir, "dev")
    assert dev == [
        MultipleChoiceExample(
            "24",
            "A man is sitting on a roof.",
            "he",
            ("is using wrap.", "is ripping shingles.", "is holding a rubix cube.", "starts."),
            1,
        )
    ]
    data = task.encode(dev, tokenizer, 128)
    arr = data.input_ids[0]
    second = tokenizer("A man is sitting on a roof.", "he is ripping shingles.")["input_ids"]
    assert arr.shape[0] == 4 and arr[1, : len(second)].tolist() == second
    assert data.labels == [1]


def test_hellaswag_wrong_ending_count(write_data: WriteData, data_dir: Path) -> None:
    write_data("hellaswag/hellaswag_train.jsonl", jsonl([hellaswag_record(4, 0, n_endings=3)]))
    with pytest.raises(DataFormatError, match="expected 4 endings, found 3"):
        get_task("hellaswag").examples(data_dir, "train")


# -- commonsenseqa -------------------------------------------------------------------------------
def csqa_record(qid: str, answer: str) -> dict[str, Any]:
    texts = ["ignore", "enforce", "authoritarian", "yell at", "avoid"]
    return {
        "answerKey": answer,
        "id": qid,
        "question": {
            "question_concept": "punishing",
            "choices": [{"label": k, "text": t} for k, t in zip("ABCDE", texts, strict=True)],
            "stem": "The sanctions against the school were a punishing blow. What did they do?",
        },
    }


def test_commonsenseqa(write_data: WriteData, data_dir: Path, tokenizer: object) -> None:
    write_data("commonsenseqa/train_rand_split.jsonl", jsonl([csqa_record("075e483d", "A")]))
    write_data("commonsenseqa/dev_rand_split.jsonl", jsonl([csqa_record("1afa02df", "E")]))
    task = get_task("commonsenseqa")
    assert task.num_labels == 5
    dev = task.examples(data_dir, "dev")
    assert dev[0].label == 4 and dev[0].context == "" and len(dev[0].choices) == 5
    data = task.encode(dev, tokenizer, 128)
    assert data.input_ids[0].shape[0] == 5 and data.labels == [4]
    # no passage: each row is <s></s></s> stem + choice </s>
    assert data.input_ids[0][0, :3].tolist() == [0, 2, 2]
