"""Opening data files: transparent gzip, strict UTF-8 with file:line errors, streamed hashing.
Every reader in `xstilts.data` reads through `iter_lines`, so they all fail the same way."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from xstilts.data.errors import DataFormatError

_BOM = "\ufeff"


def _open_binary(path: Path) -> BinaryIO:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


class StrictTextFile(io.TextIOBase):
    """A read-only text view of a (possibly gzipped) file, decoded line by line as strict UTF-8.

    Lines end at b"\\n" only (a lone "\\r" inside a line is data, not a line break) and keep their
    ending, like a file opened with `newline=""`. A UTF-8 byte-order mark on the first line is
    dropped. Undecodable bytes raise DataFormatError with the file and the 1-based line number."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._raw = _open_binary(self.path)
        self.lineno = 0

    def readable(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        if size is not None and size >= 0:
            raise io.UnsupportedOperation("StrictTextFile.readline does not take a size")
        try:
            raw = self._raw.readline()
        except (gzip.BadGzipFile, EOFError, zlib.error) as err:  # only a .gz file raises these
            raise DataFormatError(
                self.path, self.lineno + 1, f"corrupt or truncated gzip data: {err}"
            ) from None
        if not raw:
            return ""
        self.lineno += 1
        try:
            text = raw.decode("utf-8", errors="strict")
        except UnicodeDecodeError as err:
            bad = raw[err.start : err.end]
            raise DataFormatError(
                self.path,
                self.lineno,
                f"not valid UTF-8: byte(s) {bad!r} at byte offset {err.start} of the line",
            ) from None
        if self.lineno == 1 and text.startswith(_BOM):
            text = text[1:]
        return text

    def read(self, size: int | None = -1) -> str:
        if size is not None and size >= 0:
            raise io.UnsupportedOperation("StrictTextFile.read does not take a size")
        return "".join(iter(self.readline, ""))

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]  # text, not _IOBase's bytes
        return iter(self.readline, "")

    def __next__(self) -> str:  # type: ignore[override]
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def open_text(path: str | Path) -> StrictTextFile:
    """Open `path` for reading as strict UTF-8 text; a name ending in `.gz` is decompressed."""
    return StrictTextFile(path)


def strip_line_end(line: str) -> str:
    """Remove one trailing line end: "\\r\\n", "\\n" or "\\r"."""
    if line.endswith("\r\n"):
        return line[:-2]
    if line.endswith(("\n", "\r")):
        return line[:-1]
    return line


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line without its CRLF / LF / CR ending) for every line."""
    with open_text(path) as handle:
        for line in handle:
            yield handle.lineno, strip_line_end(line)
