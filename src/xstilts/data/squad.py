"""Reader for SQuAD v1.1 and v2.0 JSON files (`data[].paragraphs[].qas[]`).
Every answer is checked to sit at its `answer_start` in the unmodified context."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xstilts.data.errors import DataFormatError
from xstilts.data.records import SpanExample
from xstilts.data.rows import load_json


def _checked_answers(
    path: Path, where: str, context: str, answers: object
) -> list[tuple[str, int]]:
    if not isinstance(answers, list):
        raise DataFormatError(path, None, f"{where}: expected 'answers' as a list")
    checked: list[tuple[str, int]] = []
    for n, answer in enumerate(answers):
        text = answer.get("text") if isinstance(answer, dict) else None
        start = answer.get("answer_start") if isinstance(answer, dict) else None
        if not isinstance(text, str) or not isinstance(start, int) or isinstance(start, bool):
            raise DataFormatError(
                path, None, f"{where}: answer {n} needs a string 'text' and an int 'answer_start'"
            )
        found = context[start : start + len(text)] if start >= 0 else None
        if found != text:
            raise DataFormatError(
                path,
                None,
                f"{where}: answer {n} {text!r} is not at answer_start {start} "
                f"(the context there reads {found!r})",
            )
        checked.append((text, start))
    return checked


def _question_example(path: Path, where: str, context: str, qa: Any) -> SpanExample:
    if not isinstance(qa, dict):
        raise DataFormatError(path, None, f"{where}: expected a question object")
    qa_id, question = qa.get("id"), qa.get("question")
    if not isinstance(qa_id, str) or not isinstance(question, str):
        raise DataFormatError(path, None, f"{where}: expected string 'id' and 'question'")
    where = f"{where} (id {qa_id})"
    impossible = qa.get("is_impossible", False)
    if not isinstance(impossible, bool):
        raise DataFormatError(path, None, f"{where}: expected a boolean 'is_impossible'")
    answers = _checked_answers(path, where, context, qa.get("answers"))
    if impossible:
        if answers:
            raise DataFormatError(path, None, f"{where}: is_impossible but has answers")
        return SpanExample(qa_id, context, question, answer_text="", answer_start=-1)
    if not answers:
        raise DataFormatError(path, None, f"{where}: no answers and not is_impossible")
    text, start = answers[0]
    return SpanExample(qa_id, context, question, answer_text=text, answer_start=start)


def read_squad(path: str | Path) -> list[SpanExample]:
    """Read a SQuAD `train-v1.1.json` / `dev-v1.1.json` / `train-v2.0.json` / `dev-v2.0.json`.

    One SpanExample per question, carrying the first answer (dev files list several; training
    uses the first). SQuAD v2 questions with `is_impossible` get answer_start -1 and text "".
    Contexts are kept unstripped: stripping shifts every answer_start. An answer whose text is
    not found at its answer_start, an unanswered answerable question or a malformed record
    raises DataFormatError naming the article, paragraph and question id."""
    path = Path(path)
    root = load_json(path)
    if not isinstance(root, dict) or not isinstance(root.get("data"), list):
        raise DataFormatError(path, None, "expected a JSON object with a 'data' list")
    examples: list[SpanExample] = []
    for a_index, article in enumerate(root["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataFormatError(path, None, f"article {a_index}: expected a 'paragraphs' list")
        for p_index, paragraph in enumerate(paragraphs):
            where = f"article {a_index} paragraph {p_index}"
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            qas = paragraph.get("qas") if isinstance(paragraph, dict) else None
            if not isinstance(context, str) or not isinstance(qas, list):
                raise DataFormatError(path, None, f"{where}: expected 'context' and a 'qas' list")
            examples.extend(_question_example(path, where, context, qa) for qa in qas)
    return examples
