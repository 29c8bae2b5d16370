"""Record iteration for CSV, JSON Lines and JSON files, with file:line errors.
Shared by the readers whose upstream formats are CSV or JSON rather than TSV."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from xstilts.data.errors import DataFormatError
from xstilts.data.io import iter_lines, open_text


def iter_csv_rows(
    path: str | Path, required_columns: Sequence[str]
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line the record starts on, {column: value}) for each record of a headed CSV file.

    Quoted fields may hold commas, quotes and newlines; the line reported is the physical line
    where the record begins. Blank lines are skipped. A header lacking `required_columns`, a
    record with a different field count or broken quoting raises DataFormatError."""
    path = Path(path)
    with open_text(path) as handle:
        reader = csv.reader(handle, strict=True)
        start = 1
        try:
            header = next(reader, None)
            if header is None:
                raise DataFormatError(path, None, "empty file: expected a CSV header")
            missing = [name for name in required_columns if name not in header]
            if missing:
                raise DataFormatError(path, 1, f"CSV header lacks column(s) {missing}")
            start = reader.line_num + 1
            for row in reader:
                if row:
                    if len(row) != len(header):
                        raise DataFormatError(
                            path, start, f"expected {len(header)} CSV fields, found {len(row)}"
                        )
                    yield start, dict(zip(header, row, strict=True))
                start = reader.line_num + 1
        except csv.Error as err:
            raise DataFormatError(path, start, f"malformed CSV record: {err}") from None


def iter_jsonl_objects(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line of a JSON Lines file; a line that is
    not a JSON object raises DataFormatError."""
    path = Path(path)
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(path, lineno, f"not valid JSON: {err.msg}") from None
        except RecursionError:
            raise DataFormatError(path, lineno, "JSON nested too deeply") from None
        if not isinstance(record, dict):
            raise DataFormatError(
                path, lineno, f"expected a JSON object, found {type(record).__name__}"
            )
        yield lineno, record


def load_json(path: str | Path) -> Any:
    """Parse a whole (possibly gzipped) JSON file; a syntax error names its line."""
    path = Path(path)
    with open_text(path) as handle:
        text = handle.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFormatError(path, err.lineno, f"not valid JSON: {err.msg}") from None
    except RecursionError:
        raise DataFormatError(path, None, "JSON nested too deeply") from None


def require_str(path: Path, line: int | None, record: dict[str, Any], key: str) -> str:
    """record[key] as a string, else DataFormatError naming the key and what was found."""
    value = record.get(key)
    if not isinstance(value, str):
        raise DataFormatError(path, line, f"expected a string field {key!r}, found {value!r:.80}")
    return value
