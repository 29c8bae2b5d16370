"""Semantic tasks whose data is here, on tiny upstream-format files: examples per split (the
hashed-id holdouts partition their file), labels, and encodings with the real tokenizer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from xstilts.data.errors import DataFormatError
from xstilts.data.records import MultipleChoiceExample, PairExample
from xstilts.tasks.base import holdout_split
from xstilts.tasks.registry import get_task

WriteData = Callable[[str, str | bytes], Path]


def check_holdout(task_name: str, data_dir: Path, salt: str) -> tuple[list, list]:
    """train and dev partition the task's pooled examples exactly as holdout_split(0.2, salt)."""
    task = get_task(task_name)
    train, dev = list(task.examples(data_dir, "train")), list(task.examples(data_dir, "dev"))
    pooled = sorted([*train, *dev], key=lambda ex: ex.id)
    assert not {ex.id for ex in train} & {ex.id for ex in dev}
    for split, got in (("train", train), ("dev", dev)):
        assert sorted(got, key=lambda ex: ex.id) == holdout_split(pooled, split, 0.2, salt)
    return train, dev


# -- anli ----------------------------------------------------------------------------------------
ANLI_HEADER = "uid,context,statement,gold_label,model_label,reason\n"


def test_anli_rounds_pooled_and_held_out(
    write_data: WriteData, data_dir: Path, tokenizer: object
) -> None:
    labels = "enc"
    for r in (1, 2, 3):
        rows = "".join(
            f'r{r}-{i},"Premise {r}, {i}.",Hypothesis {i}.,{labels[i % 3]},e,x\n' for i in range(20)
        )
        write_data(f"anli/ANLI_analysis_r{r}_dev.csv", ANLI_HEADER + rows)
    task = get_task("anli")
    assert task.num_labels == 3 and task.spec.labels == ("entailment", "neutral", "contradiction")
    train, dev = check_holdout("anli", data_dir, "anli")
    assert len(train) + len(dev) == 60 and 0 < len(dev) < 30
    by_id = {ex.id: ex for ex in [*train, *dev]}
    assert by_id["r2-4"] == PairExample("r2-4", "Premise 2, 4.", "Hypothesis 4.", 1)
    assert by_id["r3-5"].label == 2
    data = task.encode(dev, tokenizer, 128)
    ids = data.input_ids[0].tolist()
    assert ids[0] == 0 and ids.count(2) == 3  # <s> premise </s></s> hypothesis </s>
    assert data.labels == [ex.label for ex in dev]


# -- cosmosqa ------------------------------------------------------------------------------------
COSMOS_HEADER = "id,context,question,answer0,answer1,answer2,answer3,label\n"


def test_cosmosqa(write_data: WriteData, data_dir: Path, tokenizer: object) -> None:
    rows = "".join(
        f'q{i},"Ctx {i}, with a comma.",Why ?,yes,no,"maybe, so",None of the above .,{i % 4}\n'
        for i in range(30)
    )
    write_data("cosmosqa/valid.csv", COSMOS_HEADER + rows)
    task = get_task("cosmosqa")
    assert task.num_labels == 4
    train, dev = check_holdout("cosmosqa", data_dir, "cosmosqa")
    assert len(train) + len(dev) == 30
    ex = next(e for e in [*train, *dev] if e.id == "q6")
    assert ex == MultipleChoiceExample(
        "q6", "Ctx 6, with a comma.", "Why ?", ("yes", "no", "maybe, so", "None of the above ."), 2
    )
    data = task.encode([ex], tokenizer, 128)
    arr = data.input_ids[0]
    assert arr.shape[0] == 4 and data.labels == [2]
    # each row is <s> context </s></s> question + choice </s>, padded to the longest choice
    first = tokenizer("Ctx 6, with a comma.", "Why ? yes")["input_ids"]
    assert arr[0, : len(first)].tolist() == first
    assert set(arr[0, len(first) :].tolist()) <= {tokenizer.pad_token_id}


# -- mnli_dev_matched ----------------------------------------------------------------------------
def test_mnli_dev_matched(write_data: WriteData, data_dir: Path, tokenizer: object) -> None:
    header = "index\tpremise\thypothesis\tgold_label\tnumber of correct responses (out of 100)\n"
    gold = ["neutral", "contradiction", "entailment"]
    rows = "".join(f"{i}\tP {i} .\tH {i} \t{gold[i % 3]}\t{i}\n" for i in range(25))
    write_data(
        "mnli-dev-matched/mnli_development_set_number_of_correct_responses.txt", header + rows
    )
    train, dev = check_holdout("mnli_dev_matched", data_dir, "mnli_dev_matched")
    by_id = {ex.id: ex for ex in [*train, *dev]}
    assert by_id["0"] == PairExample("0", "P 0 .", "H 0 ", 1)
    assert by_id["2"].label == 0
    data = get_task("mnli_dev_matched").encode(train, tokenizer, 128)
    assert data.labels == [ex.label for ex in train]


# -- qqp -----------------------------------------------------------------------------------------
def test_qqp_skips_the_malformed_first_row(
    write_data: WriteData, data_dir: Path, tokenizer: object
) -> None:
    broken = "133273\t213221\t213222\tHow is the life?\tWhich level is enough? 0\n"
    rows = "".join(f"{i}\t{2 * i}\t{2 * i + 1}\tQ{i} a?\tQ{i} b?\t{i % 2}\n" for i in range(1, 31))
    write_data("qqp-subset/new_dev.tsv", broken + rows)
    with pytest.warns(UserWarning, match=r"skipped 1 malformed qqp row\(s\) at line\(s\) 1"):
        train, dev = check_holdout("qqp", data_dir, "qqp")
    assert len(train) + len(dev) == 30 and "133273" not in {ex.id for ex in [*train, *dev]}
    data = get_task("qqp").encode(dev, tokenizer, 128)
    assert data.labels == [ex.label for ex in dev]


# -- mrpc ----------------------------------------------------------------------------------------
MRPC_HEADER = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"


def test_mrpc(write_data: WriteData, data_dir: Path, tokenizer: object) -> None:
    write_data(
        "mrpc/msr_paraphrase_train.txt",
        MRPC_HEADER + '1\t702876\t702977\tAmrozi said "hi".\tAmrozi greeted.\n0\t1\t2\tA.\tB.\n',
    )
    write_data("mrpc/msr_paraphrase_test.txt", MRPC_HEADER + "1\t3\t4\tC.\tC again.\n")
    task = get_task("mrpc")
    assert task.examples(data_dir, "train") == [
        PairExample("702876-702977", 'Amrozi said "hi".', "Amrozi greeted.", 1),
        PairExample("1-2", "A.", "B.", 0),
    ]
    dev = task.examples(data_dir, "dev")
    assert dev == [PairExample("3-4", "C.", "C again.", 1)]
    data = task.encode(dev, tokenizer, 128)
    assert data.input_ids[0].tolist() == tokenizer("C.", "C again.")["input_ids"]


# -- sst2 ----------------------------------------------------------------------------------------
def test_sst2(write_data: WriteData, data_dir: Path, tokenizer: object) -> None:
    write_data("sst2/train_full.tsv", "sentence\tlabel\nhide new secretions \t0\ngood fun \t1\n")
    write_data("sst2/dev.tsv", "sentence\tlabel\nit 's a charming journey . \t1\n")
    task = get_task("sst2")
    assert task.spec.category == "semantic"
    assert "neither" in task.spec.description
    train = task.examples(data_dir, "train")
    assert [(ex.text_a, ex.label) for ex in train] == [
        ("hide new secretions ", 0),
        ("good fun ", 1),
    ]
    data = task.encode(task.examples(data_dir, "dev"), tokenizer, 128)
    assert data.input_ids[0].tolist() == tokenizer("it 's a charming journey . ")["input_ids"]
    assert data.labels == [1]


# -- dream ---------------------------------------------------------------------------------------
def dream_dialogue(dialogue_id: str, n_choices: int = 3) -> list:
    choices = ["It was cancelled.", "It was moved.", "It was great.", "Other."][:n_choices]
    question = {"question": "What about the movie?", "choice": choices, "answer": choices[0]}
    return [["W: The movie is off.", "M: What do you mean?"], [question], dialogue_id]


def test_dream(write_data: WriteData, data_dir: Path, tokenizer: object) -> None:
    write_data("dream/data/train.json", json.dumps([dream_dialogue("4-199")]))
    write_data("dream/data/dev.json", json.dumps([dream_dialogue("5-1"), dream_dialogue("5-2")]))
    task = get_task("dream")
    assert task.num_labels == 3
    train = task.examples(data_dir, "train")
    assert train == [
        MultipleChoiceExample(
            "4-199_0",
            "W: The movie is off.\nM: What do you mean?",
            "What about the movie?",
            ("It was cancelled.", "It was moved.", "It was great."),
            0,
        )
    ]
    assert [ex.id for ex in task.examples(data_dir, "dev")] == ["5-1_0", "5-2_0"]
    data = task.encode(train, tokenizer, 128)
    assert data.input_ids[0].shape[0] == 3 and data.labels == [0]


def test_dream_wrong_choice_count(write_data: WriteData, data_dir: Path) -> None:
    write_data("dream/data/dev.json", json.dumps([dream_dialogue("5-1", n_choices=4)]))
    with pytest.raises(DataFormatError, match="expected 3 choices, found 4"):
        get_task("dream").examples(data_dir, "dev")


# -- snli ----------------------------------------------------------------------------------------
def test_snli(write_data: WriteData, data_dir: Path, tokenizer: object) -> None:
    gold = ["neutral", "entailment", "contradiction"]
    for part, n in (("dev", 12), ("test", 9)):
        write_data(f"snli/s1.{part}", "".join(f"Two women {i} . \n" for i in range(n)))
        write_data(f"snli/s2.{part}", "".join(f"Two people {i} . \n" for i in range(n)))
        write_data(f"snli/labels.{part}", "".join(f"{gold[i % 3]}\n" for i in range(n)))
    task = get_task("snli")
    assert len(task.files(data_dir)) == 6
    train, dev = check_holdout("snli", data_dir, "snli")
    by_id = {ex.id: ex for ex in [*train, *dev]}
    assert len(by_id) == 21
    assert by_id["test:2"] == PairExample("test:2", "Two women 1 . ", "Two people 1 . ", 0)
    data = task.encode(dev, tokenizer, 128)
    assert np.all([ids[0] == 0 for ids in data.input_ids])


def test_snli_unequal_files(write_data: WriteData, data_dir: Path) -> None:
    for part in ("dev", "test"):
        write_data(f"snli/s1.{part}", "a\nb\n")
        write_data(f"snli/s2.{part}", "a\n")
        write_data(f"snli/labels.{part}", "neutral\nneutral\n")
    with pytest.raises(DataFormatError, match="line counts differ"):
        get_task("snli").examples(data_dir, "train")
