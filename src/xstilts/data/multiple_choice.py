"""Readers for the multiple-choice intermediate tasks: Cosmos QA, HellaSwag, CommonsenseQA, DREAM.
Each gives MultipleChoiceExamples in the upstream order; unlabeled test files give label -1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xstilts.data.errors import DataFormatError
from xstilts.data.records import MultipleChoiceExample
from xstilts.data.rows import iter_csv_rows, iter_jsonl_objects, load_json, require_str

COSMOSQA_ANSWER_COLUMNS = ("answer0", "answer1", "answer2", "answer3")


def _index_label(path: Path, line: int | None, raw: object, n_choices: int) -> int:
    """An integer label 0..n_choices-1 given as an int or a decimal string."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str) and raw.isascii() and raw.isdigit():
        value = int(raw)
    else:
        value = -1
    if not 0 <= value < n_choices:
        raise DataFormatError(
            path, line, f"expected a label in 0..{n_choices - 1}, found {raw!r:.80}"
        )
    return value


def _cosmosqa_example(path: Path, line: int, row: dict[str, Any]) -> MultipleChoiceExample:
    choices = tuple(require_str(path, line, row, key) for key in COSMOSQA_ANSWER_COLUMNS)
    raw_label = row.get("label")
    return MultipleChoiceExample(
        id=require_str(path, line, row, "id"),
        context=require_str(path, line, row, "context"),
        question=require_str(path, line, row, "question"),
        choices=choices,
        label=-1 if raw_label is None else _index_label(path, line, raw_label, len(choices)),
    )


def read_cosmosqa(path: str | Path) -> list[MultipleChoiceExample]:
    """Read Cosmos QA: `train.csv`/`valid.csv` (id, context, question, answer0..answer3, label)
    or the JSON Lines test file with the same keys and no label (label -1)."""
    path = Path(path)
    name = path.name.removesuffix(".gz")
    if name.endswith(".csv"):
        columns = ("id", "context", "question", *COSMOSQA_ANSWER_COLUMNS, "label")
        rows: Any = iter_csv_rows(path, columns)
    elif name.endswith(".jsonl"):
        rows = iter_jsonl_objects(path)
    else:
        raise DataFormatError(path, None, "expected a Cosmos QA file ending in .csv or .jsonl")
    return [_cosmosqa_example(path, line, row) for line, row in rows]


def read_hellaswag(path: str | Path) -> list[MultipleChoiceExample]:
    """Read HellaSwag `hellaswag_{train,val,test}.jsonl`.

    context = `ctx_a`; question = `ctx_b`, the start of the sentence that each ending completes
    (often empty; `ctx` is ctx_a + " " + ctx_b); choices = the 4 `endings`; id = `ind`. A model
    input is therefore context, then question + " " + ending. Test lines carry no label (-1)."""
    path = Path(path)
    examples: list[MultipleChoiceExample] = []
    for line, record in iter_jsonl_objects(path):
        endings = record.get("endings")
        if (
            not isinstance(endings, list)
            or len(endings) < 2
            or not all(isinstance(e, str) for e in endings)
        ):
            raise DataFormatError(
                path, line, f"expected 'endings' as a list of strings, found {endings!r:.80}"
            )
        ind = record.get("ind")
        if not isinstance(ind, int | str) or isinstance(ind, bool):
            raise DataFormatError(path, line, f"expected an 'ind' id, found {ind!r:.80}")
        raw_label = record.get("label")
        examples.append(
            MultipleChoiceExample(
                id=str(ind),
                context=require_str(path, line, record, "ctx_a"),
                question=require_str(path, line, record, "ctx_b"),
                choices=tuple(endings),
                label=-1
                if raw_label is None
                else _index_label(path, line, raw_label, len(endings)),
            )
        )
    return examples


def read_commonsenseqa(path: str | Path) -> list[MultipleChoiceExample]:
    """Read CommonsenseQA `{train,dev,test}_rand_split*.jsonl`: question = `question.stem`,
    choices = `question.choices[].text` in file order, label = position of `answerKey` among
    the choice labels (absent in test: -1). There is no passage: context is ""."""
    path = Path(path)
    examples: list[MultipleChoiceExample] = []
    for line, record in iter_jsonl_objects(path):
        question = record.get("question")
        if not isinstance(question, dict):
            raise DataFormatError(path, line, "expected a 'question' object")
        stem = require_str(path, line, question, "stem")
        raw_choices = question.get("choices")
        if not isinstance(raw_choices, list) or len(raw_choices) < 2:
            raise DataFormatError(path, line, "expected 'question.choices' as a list of choices")
        keys: list[str] = []
        texts: list[str] = []
        for choice in raw_choices:
            if not isinstance(choice, dict):
                raise DataFormatError(path, line, f"expected a choice object, found {choice!r:.80}")
            keys.append(require_str(path, line, choice, "label"))
            texts.append(require_str(path, line, choice, "text"))
        if len(set(keys)) != len(keys):
            raise DataFormatError(path, line, f"choice labels repeat: {keys}")
        answer = record.get("answerKey")
        if answer is None:
            label = -1
        elif answer in keys:
            label = keys.index(answer)
        else:
            raise DataFormatError(
                path, line, f"expected 'answerKey' among the choice labels {keys}, found {answer!r}"
            )
        examples.append(
            MultipleChoiceExample(
                id=require_str(path, line, record, "id"),
                context="",
                question=stem,
                choices=tuple(texts),
                label=label,
            )
        )
    return examples


def _dream_dialogue(path: Path, position: int, item: object) -> list[MultipleChoiceExample]:
    where = f"dialogue {position}"
    if not (isinstance(item, list) and len(item) == 3):
        raise DataFormatError(path, None, f"{where}: expected [turns, questions, id]")
    turns, questions, dialogue_id = item
    if not isinstance(dialogue_id, str):
        raise DataFormatError(
            path, None, f"{where}: expected a string id, found {dialogue_id!r:.80}"
        )
    where = f"dialogue {position} ({dialogue_id!r})"
    if not (isinstance(turns, list) and turns and all(isinstance(t, str) for t in turns)):
        raise DataFormatError(path, None, f"{where}: expected a non-empty list of turn strings")
    if not (isinstance(questions, list) and questions):
        raise DataFormatError(path, None, f"{where}: expected a non-empty list of questions")
    context = "\n".join(turns)
    examples: list[MultipleChoiceExample] = []
    for q_index, question in enumerate(questions):
        q_where = f"{where} question {q_index}"
        if not isinstance(question, dict):
            raise DataFormatError(path, None, f"{q_where}: expected an object")
        text = question.get("question")
        choices = question.get("choice")
        answer = question.get("answer")
        if not isinstance(text, str) or not isinstance(answer, str):
            raise DataFormatError(path, None, f"{q_where}: expected string 'question', 'answer'")
        if not (isinstance(choices, list) and all(isinstance(c, str) for c in choices)):
            raise DataFormatError(path, None, f"{q_where}: expected 'choice' as a list of strings")
        matches = [i for i, choice in enumerate(choices) if choice == answer]
        if not matches:
            raise DataFormatError(
                path, None, f"{q_where}: answer {answer!r} is not among the choices {choices}"
            )
        examples.append(
            MultipleChoiceExample(
                id=f"{dialogue_id}_{q_index}",
                context=context,
                question=text,
                choices=tuple(choices),
                label=matches[0],
            )
        )
    return examples


def read_dream(path: str | Path) -> list[MultipleChoiceExample]:
    """Read a DREAM `data/{train,dev,test}.json` file: a list of [turns, questions, dialogue id],
    each question {"question", "choice": [3 strings], "answer": the right choice's text}.

    context = the turns joined by newlines ("M: ...\\nW: ..."); label = index of the choice equal
    to the answer (choices may repeat, as in train 21-261; an answer equal to two choices would
    take the first); id = "<dialogue id>_<question index>". Errors name the dialogue and the
    question (JSON records carry no line number)."""
    path = Path(path)
    data = load_json(path)
    if not isinstance(data, list):
        raise DataFormatError(path, 1, "expected a JSON list of dialogues")
    return [
        example
        for position, item in enumerate(data)
        for example in _dream_dialogue(path, position, item)
    ]
