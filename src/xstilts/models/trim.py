"""Vocabulary trimming: keep only the word pieces a corpus uses, shrink the embedding matrix and
write a smaller encoder directory whose tokenizer encodes that corpus exactly as before.

Why this is exact, for a SentencePiece-Unigram tokenizer (XLM-R, e5): the normalizer,
pre-tokenizer and added-token extraction are kept unchanged, so each text reaches the Unigram
model as the same words. The model picks, per word, the highest-scoring segmentation by dynamic
programming over byte positions (`tokenizers`' Viterbi): for every end position it keeps the first
candidate (in a fixed order: by start position, then by length) whose score beats all earlier
ones (strict `>`). Kept pieces keep their scores. Removing pieces only removes candidates, with
one exception: where no single-character piece remains at a position, the model adds an `<unk>`
candidate scored `min_score − 10`, with `min_score` the lowest score in the vocabulary. Trimming
therefore always keeps one piece with the original lowest score, so that penalty, and every kept
candidate's score, stays as it was. Let P* be the original best path of a word, all of whose
pieces are kept (they occurred). By induction over positions, (a) every best score in the trimmed
DP is at most the original one: its candidates are original candidates, or new `<unk>` ones that
score strictly less than the removed single-character piece they stand in for (that piece scores
at least `min_score`, the `<unk>` exactly `min_score − 10`); (b) at every position on P* the best
score is the same, reached by the same P* candidate: it is still there with the same score, each
candidate visited before it scored strictly less originally (else it would have been chosen) and
scores no more now, later ones never replace it under strict `>`. Backtracking from the end thus
retraces P*. Without the lowest-score piece this fails: `test_trim` has a four-piece vocabulary
where the raised `<unk>` score makes a path through `<unk>` win.

WordPiece is exact by a simpler argument: it takes, left to right, the longest piece in the
vocabulary that matches; the chosen piece is kept, and every longer match was absent before and
is absent now. WordLevel looks words up whole. BPE is not supported (its merge table would have to
be pruned consistently, and a removed intermediate piece changes later merges): it raises
NotImplementedError. Every trim is also checked at run time: all texts are encoded again with the
written tokenizer and compared id by id through the map.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from xstilts.models.encoder_dir import atomic_output_dir, read_provenance, write_provenance
from xstilts.models.params import ParamCounts, count_parameters

TRIM_MAP_FILENAME = "trim_map.json"
"""Written into every trimmed directory: `new_to_old[i]` is the original id of new id i."""

SUPPORTED_TOKENIZER_MODELS = ("Unigram", "WordPiece", "WordLevel")
TOKENIZER_DATA_FILES = ("tokenizer.json", "sentencepiece.bpe.model", "spm.model", "vocab.txt")
"""Tokenizer files that carry the full vocabulary: never copied into a trimmed directory."""
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
_VOCAB_ROW_SUFFIXES = (
    "word_embeddings.weight",
    "decoder.weight",
    "decoder.bias",
    "predictions.bias",
    "lm_head.weight",
    "lm_head.bias",
)
"""Weights with one row per vocabulary id: input embeddings and any (tied) MLM output layer."""
_CONFIG_ID_FIELDS = (
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
    "sep_token_id",
    "cls_token_id",
    "mask_token_id",
    "unk_token_id",
    "decoder_start_token_id",
)
ENCODE_BATCH = 8192


class TrimError(ValueError):
    """A trim that cannot be made exact: names the directory and what did not match."""


@dataclass(frozen=True)
class TrimReport:
    """What a trim kept and what it saved.

    `tokens`: tokens the texts encode to (special tokens not counted); `pieces_in_texts`: distinct
    non-special ids among them; `vocab_*`: tokenizer sizes; `embedding_rows_*`: word-embedding
    rows (e5-small has 35 rows beyond its tokenizer, dropped); `params_*`: `count_parameters`
    of the directory's AutoModel; `map_file`: the written `trim_map.json`.
    """

    source_dir: str
    out_dir: str
    tokenizer_model: str
    texts: int
    tokens: int
    pieces_in_texts: int
    vocab_before: int
    vocab_after: int
    embedding_rows_before: int
    embedding_rows_after: int
    params_before: ParamCounts
    params_after: ParamCounts
    map_file: str

    def to_json(self) -> dict[str, Any]:
        """A plain dict (counts nested), for provenance records and summaries."""
        out = {k: v for k, v in self.__dict__.items() if not isinstance(v, ParamCounts)}
        out["params_before"] = self.params_before.to_json()
        out["params_after"] = self.params_after.to_json()
        return out


# -- pure parts: which ids to keep, and the trimmed tokenizer.json ------------------------------
def tokenizer_model_type(spec: Mapping[str, Any]) -> str:
    """The `model.type` of a tokenizer.json spec (older files without it count as their shape)."""
    model = spec.get("model") or {}
    kind = model.get("type")
    if kind:
        return str(kind)
    if "merges" in model:
        return "BPE"
    if isinstance(model.get("vocab"), list):
        return "Unigram"
    return "WordPiece" if "continuing_subword_prefix" in model else "WordLevel"


def check_supported(spec: Mapping[str, Any], where: str) -> str:
    """The tokenizer model type, or NotImplementedError for one trimming cannot keep exact."""
    kind = tokenizer_model_type(spec)
    if kind not in SUPPORTED_TOKENIZER_MODELS:
        raise NotImplementedError(
            f"{where}: vocabulary trimming supports {', '.join(SUPPORTED_TOKENIZER_MODELS)} "
            f"tokenizers, not {kind}: removing {kind} pieces would also need its merge table "
            "pruned consistently (a removed intermediate piece changes later merges)"
        )
    return kind


def model_vocab_size(spec: Mapping[str, Any]) -> int:
    """How many ids the tokenizer model itself holds (added tokens may lie beyond them)."""
    vocab = (spec.get("model") or {}).get("vocab") or []
    if isinstance(vocab, Mapping):
        return max(vocab.values(), default=-1) + 1
    return len(vocab)


def _processor_ids(processor: Mapping[str, Any] | None) -> Iterator[int]:
    if not processor:
        return
    kind = processor.get("type")
    if kind == "TemplateProcessing":
        for token in (processor.get("special_tokens") or {}).values():
            yield from (int(i) for i in token.get("ids", []))
    elif kind in ("RobertaProcessing", "BertProcessing"):
        for key in ("sep", "cls"):
            if processor.get(key):
                yield int(processor[key][1])
    elif kind == "Sequence":
        for inner in processor.get("processors") or []:
            yield from _processor_ids(inner)


def _unk_id(spec: Mapping[str, Any]) -> int | None:
    model = spec.get("model") or {}
    if "unk_id" in model:
        return None if model["unk_id"] is None else int(model["unk_id"])
    unk = model.get("unk_token")
    vocab = model.get("vocab")
    if unk is not None and isinstance(vocab, Mapping) and unk in vocab:
        return int(vocab[unk])
    return None


def lowest_score_piece(spec: Mapping[str, Any]) -> int | None:
    """The first id holding the lowest Unigram score (keeps the `<unk>` penalty unchanged)."""
    if tokenizer_model_type(spec) != "Unigram":
        return None
    vocab = spec["model"]["vocab"]
    if not vocab:
        return None
    scores = np.array([float(score) for _, score in vocab], dtype=np.float64)
    return int(np.argmin(scores))


def always_kept_ids(spec: Mapping[str, Any]) -> set[int]:
    """Ids a trimmed tokenizer must keep whatever the texts: added and special tokens, `<unk>`,
    the post-processor's and padding's ids, and for Unigram one lowest-score piece."""
    keep = {int(token["id"]) for token in spec.get("added_tokens") or []}
    keep.update(_processor_ids(spec.get("post_processor")))
    padding = spec.get("padding") or {}
    if padding.get("pad_id") is not None:
        keep.add(int(padding["pad_id"]))
    for extra in (_unk_id(spec), lowest_score_piece(spec)):
        if extra is not None:
            keep.add(extra)
    return keep


def _remap_processor(processor: Any, old_to_new: Mapping[int, int]) -> Any:
    if not processor:
        return processor
    out = dict(processor)
    kind = out.get("type")
    if kind == "TemplateProcessing":
        out["special_tokens"] = {
            name: {**token, "ids": [old_to_new[int(i)] for i in token.get("ids", [])]}
            for name, token in (out.get("special_tokens") or {}).items()
        }
    elif kind in ("RobertaProcessing", "BertProcessing"):
        for key in ("sep", "cls"):
            if out.get(key):
                out[key] = [out[key][0], old_to_new[int(out[key][1])]]
    elif kind == "Sequence":
        out["processors"] = [_remap_processor(p, old_to_new) for p in out.get("processors") or []]
    return out


def trim_tokenizer_spec(spec: Mapping[str, Any], new_to_old: Sequence[int]) -> dict[str, Any]:
    """The tokenizer.json spec with only the ids `new_to_old` (ascending; new id i = old id
    new_to_old[i]): model vocabulary, `<unk>`, added tokens, post-processor and padding ids.
    Normalizer, pre-tokenizer and decoder are copied unchanged. Pure: no files, no checks of
    exactness (see the module docstring for why it is exact, and `trim_tokenizer_files`)."""
    kind = check_supported(spec, "tokenizer.json")
    if list(new_to_old) != sorted(set(new_to_old)):
        raise ValueError("new_to_old must list distinct old ids in ascending order")
    old_to_new = {old: new for new, old in enumerate(new_to_old)}
    missing = always_kept_ids(spec) - old_to_new.keys()
    if missing:
        raise ValueError(f"ids {sorted(missing)} must be kept (special, unk or lowest-score)")
    out = json.loads(json.dumps(spec))
    model = out["model"]
    n_model = model_vocab_size(spec)
    in_model = [old for old in new_to_old if old < n_model]
    if in_model != list(new_to_old[: len(in_model)]):
        raise ValueError("kept added-token ids must follow all kept model ids")
    if kind == "Unigram":
        model["vocab"] = [spec["model"]["vocab"][old] for old in in_model]
        if model.get("unk_id") is not None:
            model["unk_id"] = old_to_new[int(model["unk_id"])]
    else:
        token_of = {int(i): token for token, i in spec["model"]["vocab"].items()}
        model["vocab"] = {token_of[old]: old_to_new[old] for old in in_model}
    out["added_tokens"] = [
        {**token, "id": old_to_new[int(token["id"])]} for token in spec.get("added_tokens") or []
    ]
    out["post_processor"] = _remap_processor(spec.get("post_processor"), old_to_new)
    if (out.get("padding") or {}).get("pad_id") is not None:
        out["padding"]["pad_id"] = old_to_new[int(out["padding"]["pad_id"])]
    return out


# -- tokenizers on disk ---------------------------------------------------------------------
def load_fast_tokenizer(directory: Path) -> PreTrainedTokenizerBase:
    """The directory's own tokenizer through AutoTokenizer; it must be a fast one."""
    tokenizer = AutoTokenizer.from_pretrained(directory)
    if not tokenizer.is_fast:
        raise TypeError(f"{directory}: trimming needs a fast (tokenizers) tokenizer")
    return tokenizer


def tokenizer_spec(directory: Path, tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
    """The tokenizer.json in `directory`, else the loaded tokenizer's own serialisation."""
    path = Path(directory) / "tokenizer.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return json.loads(tokenizer.backend_tokenizer.to_str())


def encode_ids(
    backend: Tokenizer, texts: Iterable[str], *, add_special_tokens: bool = False
) -> Iterator[list[int]]:
    """The token ids of each text (in batches, so `texts` may be a long stream)."""
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) >= ENCODE_BATCH:
            yield from (
                e.ids for e in backend.encode_batch(batch, add_special_tokens=add_special_tokens)
            )
            batch = []
    if batch:
        yield from (
            e.ids for e in backend.encode_batch(batch, add_special_tokens=add_special_tokens)
        )


@dataclass(frozen=True)
class EncodedTexts:
    """Every text's encoding (special tokens included) as flat int32 arrays: token ids and
    character spans, with `bounds[i]:bounds[i + 1]` the tokens of text i."""

    ids: np.ndarray
    spans: np.ndarray
    bounds: np.ndarray
    special_tokens: int

    def __len__(self) -> int:
        return len(self.bounds) - 1

    @property
    def content_tokens(self) -> int:
        """Tokens that came from the texts (special tokens not counted)."""
        return len(self.ids) - self.special_tokens


def encode_texts(backend: Tokenizer, texts: Sequence[str]) -> EncodedTexts:
    """Encode `texts` (with special tokens, in batches) into an EncodedTexts."""
    ids: list[np.ndarray] = []
    spans: list[np.ndarray] = []
    lengths = np.zeros(len(texts) + 1, dtype=np.int64)
    special = 0
    for start in range(0, len(texts), ENCODE_BATCH):
        batch = texts[start : start + ENCODE_BATCH]
        for i, enc in enumerate(backend.encode_batch(batch, add_special_tokens=True)):
            ids.append(np.asarray(enc.ids, dtype=np.int32))
            spans.append(np.asarray(enc.offsets, dtype=np.int32).reshape(-1, 2))
            lengths[start + i + 1] = len(enc.ids)
            special += sum(enc.special_tokens_mask)
    return EncodedTexts(
        ids=np.concatenate(ids) if ids else np.zeros(0, dtype=np.int32),
        spans=np.concatenate(spans) if spans else np.zeros((0, 2), dtype=np.int32),
        bounds=np.cumsum(lengths),
        special_tokens=special,
    )


def check_encodings_match(
    original: PreTrainedTokenizerBase,
    trimmed: PreTrainedTokenizerBase,
    new_to_old: Sequence[int],
    texts: Sequence[str],
    expected: EncodedTexts,
    where: str,
) -> None:
    """Raise TrimError unless every new id names the same piece as its old id, and `trimmed`
    encodes each text into the ids of `expected` (mapped by `new_to_old`) over the same spans."""
    new_pieces = trimmed.convert_ids_to_tokens(list(range(len(new_to_old))))
    old_pieces = original.convert_ids_to_tokens(list(new_to_old))
    if new_pieces != old_pieces:
        i = next(i for i, (a, b) in enumerate(zip(new_pieces, old_pieces, strict=True)) if a != b)
        raise TrimError(
            f"{where}: new id {i} is {new_pieces[i]!r}, old id {new_to_old[i]} is {old_pieces[i]!r}"
        )
    lookup = np.asarray(new_to_old, dtype=np.int64)
    backend = trimmed.backend_tokenizer
    for start in range(0, len(texts), ENCODE_BATCH):
        batch = texts[start : start + ENCODE_BATCH]
        for i, enc in enumerate(backend.encode_batch(batch, add_special_tokens=True)):
            a, b = expected.bounds[start + i], expected.bounds[start + i + 1]
            ids = lookup[np.asarray(enc.ids, dtype=np.int64)] if enc.ids else lookup[:0]
            spans = np.asarray(enc.offsets, dtype=np.int32).reshape(-1, 2)
            if not (
                np.array_equal(ids, expected.ids[a:b])
                and np.array_equal(spans, expected.spans[a:b])
            ):
                old = original.convert_ids_to_tokens(expected.ids[a:b].tolist())
                raise TrimError(
                    f"{where}: the trimmed tokenizer encodes {batch[i][:80]!r} as {enc.tokens} "
                    f"(spans {enc.offsets}), the original as {old} "
                    f"(spans {expected.spans[a:b].tolist()})"
                )


def _copy_tokenizer_config(source: Path, target: Path, old_to_new: Mapping[int, int]) -> None:
    """Copy tokenizer_config.json / special_tokens_map.json, remapping `added_tokens_decoder`."""
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        path = source / name
        if not path.is_file():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        decoder = data.get("added_tokens_decoder")
        if isinstance(decoder, dict):
            data["added_tokens_decoder"] = {
                str(old_to_new[int(i)]): token
                for i, token in decoder.items()
                if int(i) in old_to_new
            }
        (target / name).write_text(
            json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )


def trim_tokenizer_files(
    source: Path, new_to_old: Sequence[int], target: Path, spec: Mapping[str, Any] | None = None
) -> None:
    """Write the trimmed tokenizer.json and tokenizer config of `source` into `target`."""
    source, target = Path(source), Path(target)
    if spec is None:
        spec = tokenizer_spec(source, load_fast_tokenizer(source))
    trimmed = trim_tokenizer_spec(spec, new_to_old)
    (target / "tokenizer.json").write_text(
        json.dumps(trimmed, ensure_ascii=False), encoding="utf-8"
    )
    old_to_new = {old: new for new, old in enumerate(new_to_old)}
    _copy_tokenizer_config(source, target, old_to_new)


def check_same_encodings(
    original: PreTrainedTokenizerBase,
    trimmed: PreTrainedTokenizerBase,
    new_to_old: Sequence[int],
    texts: Iterable[str],
    where: str,
) -> int:
    """Raise TrimError unless `trimmed` encodes every text (with special tokens) into the same
    pieces as `original`, ids related by `new_to_old`; returns the number of texts checked."""
    lookup = np.asarray(new_to_old, dtype=np.int64)
    n = 0
    old_backend, new_backend = original.backend_tokenizer, trimmed.backend_tokenizer
    batch: list[str] = []

    def check(batch: list[str]) -> None:
        olds = old_backend.encode_batch(batch, add_special_tokens=True)
        news = new_backend.encode_batch(batch, add_special_tokens=True)
        for text, old, new in zip(batch, olds, news, strict=True):
            mapped = lookup[np.asarray(new.ids, dtype=np.int64)].tolist() if new.ids else []
            if mapped != old.ids or new.tokens != old.tokens:
                raise TrimError(
                    f"{where}: the trimmed tokenizer encodes {text[:80]!r} as {new.tokens} "
                    f"(ids {new.ids}), the original as {old.tokens} (ids {old.ids})"
                )

    for text in texts:
        batch.append(text)
        n += 1
        if len(batch) >= ENCODE_BATCH:
            check(batch)
            batch = []
    if batch:
        check(batch)
    return n


# -- weights ----------------------------------------------------------------------------------
def is_vocab_row_tensor(name: str) -> bool:
    """True for weights with one row per vocabulary id (embeddings and MLM output layers)."""
    return name.endswith(_VOCAB_ROW_SUFFIXES)


def trim_state_dict(
    tensors: Mapping[str, torch.Tensor], new_to_old: Sequence[int], rows: int
) -> dict[str, torch.Tensor]:
    """Select rows `new_to_old` of every vocabulary-row tensor with `rows` rows; the rest as is."""
    index = torch.as_tensor(list(new_to_old), dtype=torch.long)
    out = {}
    for name, tensor in tensors.items():
        if is_vocab_row_tensor(name) and tensor.shape[0] == rows:
            out[name] = tensor.index_select(0, index).contiguous()
        else:
            out[name] = tensor
    if not any(is_vocab_row_tensor(n) and t.shape[0] == rows for n, t in tensors.items()):
        raise TrimError(f"no word-embedding tensor with {rows} rows among {sorted(tensors)[:8]}")
    return out


def meta_parameter_counts(config_dir: Path) -> ParamCounts:
    """count_parameters of the directory's AutoModel, built on the meta device (no weights)."""
    config = AutoConfig.from_pretrained(config_dir)
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    return count_parameters(model)


def _trim_config(source: Path, target: Path, new_to_old: Sequence[int]) -> tuple[int, int]:
    """Copy config.json with the new vocab_size and remapped special ids; (rows before, after)."""
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    rows = int(config["vocab_size"])
    old_to_new = {old: new for new, old in enumerate(new_to_old)}
    config["vocab_size"] = len(new_to_old)
    for field in _CONFIG_ID_FIELDS:
        value = config.get(field)
        if isinstance(value, int) and value >= 0:
            config[field] = old_to_new.get(value)
    (target / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return rows, len(new_to_old)


def read_trim_map(directory: Path) -> list[int]:
    """`new_to_old` of a trimmed directory (new id i was old id new_to_old[i])."""
    data = json.loads((Path(directory) / TRIM_MAP_FILENAME).read_text(encoding="utf-8"))
    return [int(i) for i in data["new_to_old"]]


def _write_trim_map(directory: Path, new_to_old: Sequence[int], vocab_before: int) -> Path:
    path = directory / TRIM_MAP_FILENAME
    record = {
        "description": "new_to_old[i] is the original id of new id i",
        "vocab_before": vocab_before,
        "vocab_after": len(new_to_old),
        "new_to_old": list(new_to_old),
    }
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return path


def select_kept_ids(
    spec: Mapping[str, Any],
    tokenizer: PreTrainedTokenizerBase,
    occurring: Iterable[int],
    keep_ids: Iterable[int],
    where: str,
) -> list[int]:
    """Sorted old ids to keep: those that occur, the always-kept ones and `keep_ids`."""
    size = len(tokenizer)
    extra = {int(i) for i in keep_ids}
    bad = sorted(i for i in extra if not 0 <= i < size)
    if bad:
        raise ValueError(f"{where}: keep_ids {bad[:5]} lie outside the tokenizer's 0..{size - 1}")
    kept = set(occurring) | always_kept_ids(spec) | set(tokenizer.all_special_ids) | extra
    return sorted(kept)


def trim_vocabulary(
    model_dir: Path,
    texts: Iterable[str],
    out_dir: Path,
    *,
    keep_ids: Iterable[int] = (),
    overwrite: bool = False,
) -> TrimReport:
    """Write `model_dir` with only the vocabulary `texts` use into `out_dir`, atomically.

    The texts are tokenized with the directory's own fast tokenizer; kept are exactly the ids that
    occur, every special/added token, `<unk>`, for Unigram one lowest-score piece (see the module
    docstring), and `keep_ids`; new ids follow the old order. Rows of the word embeddings and of any
    MLM decoder weight/bias are selected accordingly, the tokenizer.json rebuilt with the kept
    pieces (scores, normalizer, pre-tokenizer kept; special ids fixed), `trim_map.json` written.
    Every text is then encoded again with the written tokenizer and must give the same pieces
    (ids mapped), else TrimError and nothing is written.
    """
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(
            f"{model_dir}: no model.safetensors (sharded or .bin weights are not trimmed)"
        )
    texts = list(texts)
    tokenizer = load_fast_tokenizer(model_dir)
    spec = tokenizer_spec(model_dir, tokenizer)
    kind = check_supported(spec, str(model_dir))
    encoded = encode_texts(tokenizer.backend_tokenizer, texts)
    special = np.asarray(sorted(set(tokenizer.all_special_ids)), dtype=np.int64)
    seen = set(np.unique(encoded.ids).tolist())
    content = len(np.setdiff1d(np.fromiter(seen, dtype=np.int64, count=len(seen)), special))
    new_to_old = select_kept_ids(spec, tokenizer, seen, keep_ids, str(model_dir))
    params_before = meta_parameter_counts(model_dir)
    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp:
        for path in sorted(model_dir.iterdir()):
            skip = (*TOKENIZER_DATA_FILES, *WEIGHT_FILES, TRIM_MAP_FILENAME)
            if path.is_file() and path.name not in skip and not path.name.startswith("xstilts"):
                shutil.copy2(path, tmp / path.name)
        rows_before, rows_after = _trim_config(model_dir, tmp, new_to_old)
        if rows_before < len(tokenizer):
            raise TrimError(
                f"{model_dir}: tokenizer has {len(tokenizer)} ids, embeddings {rows_before} rows"
            )
        tensors = load_file(str(weights))
        save_file(
            trim_state_dict(tensors, new_to_old, rows_before),
            str(tmp / "model.safetensors"),
            metadata={"format": "pt"},
        )
        del tensors
        trim_tokenizer_files(model_dir, new_to_old, tmp, spec)
        map_file = _write_trim_map(tmp, new_to_old, len(tokenizer))
        trimmed = load_fast_tokenizer(tmp)
        if len(trimmed) != len(new_to_old):
            raise TrimError(
                f"{model_dir}: trimmed tokenizer has {len(trimmed)} ids, expected {len(new_to_old)}"
            )
        check_encodings_match(tokenizer, trimmed, new_to_old, texts, encoded, str(model_dir))
        report = TrimReport(
            source_dir=str(model_dir),
            out_dir=str(out_dir),
            tokenizer_model=kind,
            texts=len(texts),
            tokens=encoded.content_tokens,
            pieces_in_texts=content,
            vocab_before=len(tokenizer),
            vocab_after=len(new_to_old),
            embedding_rows_before=rows_before,
            embedding_rows_after=rows_after,
            params_before=params_before,
            params_after=meta_parameter_counts(tmp),
            map_file=str(out_dir / map_file.name),
        )
        # No top-level "spec": a trimmed directory must never pass for its source's output.
        write_provenance(
            tmp,
            {
                "source": "trim",
                "trim": report.to_json(),
                "trimmed_from": read_provenance(model_dir),
            },
        )
    return report


# -- measurement: PAWS-X vocabulary -----------------------------------------------------------
def pawsx_texts(data_dir: Path) -> list[str]:
    """Every sentence of PAWS-X dev/test in the 7 languages and of paws-wiki/test.tsv."""
    from xstilts.data.pawsx import PAWSX_LANGS, pawsx_split_path, read_pawsx_tsv

    files = [
        pawsx_split_path(data_dir / "pawsx", lang, s)
        for lang in PAWSX_LANGS
        for s in ("dev", "test")
    ]
    files.append(Path(data_dir) / "paws-wiki" / "test.tsv")
    texts: list[str] = []
    for path in files:
        for example in read_pawsx_tsv(path).examples:
            texts.append(example.text_a)
            if example.text_b is not None:
                texts.append(example.text_b)
    return texts


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m xstilts.models.trim MODEL_DIR OUT_DIR (--pawsx DATA_DIR | --lines FILE)...`"""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--pawsx", type=Path, help="data dir: PAWS-X dev/test + paws-wiki test")
    parser.add_argument("--lines", type=Path, action="append", default=[], help="one text a line")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    texts: list[str] = pawsx_texts(args.pawsx) if args.pawsx else []
    for path in args.lines:
        from xstilts.data.io import iter_lines

        texts.extend(line for _, line in iter_lines(path) if line.strip())
    if not texts:
        parser.error("no texts: give --pawsx and/or --lines")
    report = trim_vocabulary(args.model_dir, texts, args.out_dir, overwrite=args.overwrite)
    json.dump(report.to_json(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
