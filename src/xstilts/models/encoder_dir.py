"""The self-contained encoder directory every model source writes: created atomically, checked
for config, safetensors weights and tokenizer files, with a provenance record beside them."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PROVENANCE_FILENAME = "xstilts_encoder.json"
"""Written into every encoder directory: where the weights came from and how they were cut."""

PRETRAIN_LOG_FILENAME = "pretrain_log.csv"
"""In the directory of an encoder xstilts pretrained: step, tokens, loss, eval_loss, lr, seconds."""

TOKENIZER_FILENAMES = ("tokenizer.json", "sentencepiece.bpe.model", "spm.model", "vocab.txt")
"""Any one of these (with tokenizer_config.json) makes a directory's tokenizer loadable."""


@contextmanager
def atomic_output_dir(out_dir: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary directory beside `out_dir`; rename it to `out_dir` on success.

    On an exception the temporary directory is removed and `out_dir` is left untouched. An
    existing `out_dir` raises FileExistsError unless `overwrite` is true, in which case it is
    replaced (moved aside, the new directory renamed in, then the old one deleted).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir}: already exists (pass overwrite=True to replace it)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{tag}"
    tmp.mkdir()
    try:
        yield tmp
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{tag}"
            os.rename(out_dir, old)
            os.rename(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_provenance(directory: Path, record: Mapping[str, Any]) -> Path:
    """Write `record` as the directory's provenance JSON (sorted keys, UTF-8); return its path."""
    path = Path(directory) / PROVENANCE_FILENAME
    path.write_text(
        json.dumps(dict(record), indent=2, sort_keys=True, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    return path


def source_record(record: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The level of a provenance record that holds `key`: a trimmed encoder nests its source's
    record under "trimmed_from" (xstilts.models.trim); {} when no level has it."""
    level: Any = record
    while isinstance(level, Mapping):
        if key in level:
            return dict(level)
        level = level.get("trimmed_from")
    return {}


def read_provenance(directory: Path) -> dict[str, Any]:
    """The directory's provenance record, or {} when it has none."""
    path = Path(directory) / PROVENANCE_FILENAME
    if not path.is_file():
        return {}
    record = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(record, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(record).__name__}")
    return record


def missing_encoder_files(directory: Path) -> list[str]:
    """What a self-contained encoder directory lacks: [] when config, safetensors weights and a
    tokenizer are all present. Sharded weights count when their index file is there."""
    directory = Path(directory)
    missing = []
    if not (directory / "config.json").is_file():
        missing.append("config.json")
    weights = ("model.safetensors", "model.safetensors.index.json")
    if not any((directory / name).is_file() for name in weights):
        missing.append("model.safetensors")
    if not (directory / "tokenizer_config.json").is_file():
        missing.append("tokenizer_config.json")
    if not any((directory / name).is_file() for name in TOKENIZER_FILENAMES):
        missing.append("tokenizer.json (or a sentencepiece/vocab file)")
    return missing
