"""Fixtures for the data-reader tests: small files in the upstream formats, written to tmp_path.
A name ending in `.gz` is written gzip-compressed, as the real compressed files are."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest

WriteFile = Callable[[str, str | bytes], Path]


@pytest.fixture
def write_file(tmp_path: Path) -> WriteFile:
    """write_file(name, content) -> path; str content is UTF-8 encoded, newlines kept as given."""

    def write(name: str, content: str | bytes) -> Path:
        data = content.encode("utf-8") if isinstance(content, str) else content
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        return path

    return write
