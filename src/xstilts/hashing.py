"""Content hashes that key every cached stage.
A key is the SHA-256 of a canonical JSON document of everything that determines a stage's output."""

from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from pathlib import Path
from typing import IO, Any

_FILE_HASHES: dict[tuple[str, int, int], str] = {}
_HASH_CHUNK = 1 << 20


def cache_base() -> Path:
    """Where xstilts keeps caches that outlive a run: $XSTILTS_CACHE_DIR, else
    $XDG_CACHE_HOME/xstilts, else ~/.cache/xstilts."""
    env = os.environ.get("XSTILTS_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "xstilts"


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, paths as strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def content_key(kind: str, payload: dict[str, Any]) -> str:
    """The stage key: kind plus a 20-hex-digit digest of the canonical payload."""
    digest = hashlib.sha256(canonical_json({"kind": kind, **payload}).encode("utf-8")).hexdigest()
    return f"{kind}-{digest[:20]}"


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of the file's bytes as stored on disk (a `.gz` file is hashed compressed),
    read afresh: for checksums that verify what was written."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copy_sha256(src: IO[bytes], out: IO[bytes]) -> tuple[str, int]:
    """Copy `src` to `out` in chunks, hashing the bytes on the way: (hex SHA-256, bytes
    copied). For data read once (a download, a bundle member) and checked as it is written."""
    digest = hashlib.sha256()
    size = 0
    while chunk := src.read(_HASH_CHUNK):
        digest.update(chunk)
        size += len(chunk)
        out.write(chunk)
    return digest.hexdigest(), size


def distribution_version(name: str) -> str | None:
    """The installed version of a Python distribution, None where it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, memoised per (path, size, mtime) within the process."""
    p = Path(path).resolve()
    st = p.stat()
    memo = (str(p), st.st_size, st.st_mtime_ns)
    cached = _FILE_HASHES.get(memo)
    if cached is not None:
        return cached
    _FILE_HASHES[memo] = digest = sha256_file(p)
    return digest
