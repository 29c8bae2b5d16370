"""Errors raised by every data reader.
A bad record names its file, its line and what was expected; nothing is silently skipped."""

from __future__ import annotations

from pathlib import Path


class DataFormatError(ValueError):
    """A malformed input record: names the file, the 1-based line (if known) and the problem."""

    def __init__(self, path: str | Path, line: int | None, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")
