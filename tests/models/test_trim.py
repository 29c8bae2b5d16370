"""Vocabulary trimming on synthetic tokenizers and tiny models: the Viterbi argument checked on
random vocabularies, the `<unk>`-penalty trap, exact encodings, embedding rows, MLM heads,
parameter counts, the id map and atomic output."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import (
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    BertModel,
    PreTrainedTokenizerFast,
    XLMRobertaTokenizerFast,
)

from xstilts.models.encoder_dir import read_provenance
from xstilts.models.params import count_parameters
from xstilts.models.trim import (
    TRIM_MAP_FILENAME,
    TrimError,
    always_kept_ids,
    check_encodings_match,
    check_same_encodings,
    encode_texts,
    lowest_score_piece,
    read_trim_map,
    trim_state_dict,
    trim_tokenizer_spec,
    trim_vocabulary,
)

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")


# -- helpers ------------------------------------------------------------------------------------
def unigram(vocab: list[tuple[str, float]], unk_id: int = 0) -> Tokenizer:
    tok = Tokenizer(models.Unigram(vocab, unk_id=unk_id, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    return tok


def trimmed_tokenizer(tok: Tokenizer, texts: list[str], *, safe: bool = True) -> list[int]:
    """new_to_old of the occurring ids (+ the always-kept ones when `safe`)."""
    spec = json.loads(tok.to_str())
    seen = {i for text in texts for i in tok.encode(text).ids}
    keep = seen | (always_kept_ids(spec) if safe else {spec["model"]["unk_id"]})
    return sorted(keep)


def same_encodings(tok: Tokenizer, new_to_old: list[int], texts: list[str]) -> list[str]:
    """The texts the trimmed tokenizer encodes differently (pieces or mapped ids)."""
    spec = json.loads(tok.to_str())
    small = Tokenizer.from_str(json.dumps(trim_tokenizer_spec(spec, new_to_old)))
    bad = []
    for text in texts:
        old, new = tok.encode(text), small.encode(text)
        if [new_to_old[i] for i in new.ids] != old.ids or old.tokens != new.tokens:
            bad.append(text)
    return bad


def xlmr_like_vocab(seed: int, letters: str = "abcdef", size: int = 60) -> list[tuple[str, float]]:
    """An XLM-R-shaped Unigram vocabulary: 4 specials, pieces with spread scores, `<mask>` last."""
    rng = random.Random(seed)
    pieces = {"▁", *letters}
    while len(pieces) < size:
        piece = "".join(rng.choice(letters) for _ in range(rng.randint(2, 4)))
        pieces.add(("▁" if rng.random() < 0.5 else "") + piece)
    scored = [(p, -round(rng.uniform(0.5, 14.0), 3)) for p in sorted(pieces)]
    return [(s, 0.0) for s in SPECIALS] + scored + [("<mask>", 0.0)]


def xlmr_tokenizer_json(path: Path, vocab: list[tuple[str, float]]) -> Path:
    tok = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    tok.add_special_tokens([*SPECIALS, "<mask>"])
    tok.save(str(path))
    return path


def random_texts(seed: int, n: int, letters: str = "abcdefg") -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(
            "".join(rng.choice(letters) for _ in range(rng.randint(1, 7)))
            for _ in range(rng.randint(1, 4))
        )
        for _ in range(n)
    ]


# -- the Viterbi argument -------------------------------------------------------------------------
def test_lowest_score_piece_is_what_keeps_the_unk_penalty() -> None:
    """Without the lowest-score piece `c`, the <unk> penalty (min score − 10) rises from −40 to
    −22 and '▁ ab <unk>' (−22.2) beats the original best path '▁a bc' (−23)."""
    vocab = [
        ("<unk>", 0.0),
        ("▁", -0.1),
        ("▁a", -11.5),
        ("bc", -11.5),
        ("ab", -0.1),
        ("c", -30.0),
        ("x", -12.0),
    ]
    tok = unigram(vocab)
    texts = ["abc", "x", "ab"]
    assert tok.encode("abc").tokens == ["▁a", "bc"]
    naive = trimmed_tokenizer(tok, texts, safe=False)
    assert 5 not in naive
    naive_tok = unigram([vocab[i] for i in naive])  # trim_tokenizer_spec refuses to build it
    assert naive_tok.encode("abc").tokens == ["▁", "ab", "c"]
    assert naive_tok.encode("abc").ids[-1] == 0  # <unk>
    with pytest.raises(ValueError, match=r"ids \[5\] must be kept"):
        trim_tokenizer_spec(json.loads(tok.to_str()), naive)
    safe = trimmed_tokenizer(tok, texts)
    assert lowest_score_piece(json.loads(tok.to_str())) == 5 and 5 in safe
    assert same_encodings(tok, safe, texts) == []


@pytest.mark.parametrize("seed", range(40))
def test_random_unigram_trims_keep_every_segmentation(seed: int) -> None:
    """Random vocabularies (some letters without a piece, so <unk> occurs) and texts: the
    trimmed tokenizer segments every kept text as the original did."""
    vocab = xlmr_like_vocab(seed, letters="abcdef", size=40)
    tok = unigram(vocab, unk_id=3)
    texts = random_texts(seed, 30, letters="abcdefg")
    keep = trimmed_tokenizer(tok, texts)
    assert len(keep) < len(vocab)
    assert same_encodings(tok, keep, texts) == []


@pytest.mark.parametrize("seed", range(10))
def test_random_wordpiece_trims_keep_every_segmentation(seed: int) -> None:
    rng = random.Random(seed)
    letters = "abcde"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters]
    while len(vocab) < 60:
        piece = "".join(rng.choice(letters) for _ in range(rng.randint(1, 4)))
        piece = ("##" if rng.random() < 0.5 else "") + piece
        if piece not in vocab:
            vocab.append(piece)
    tok = Tokenizer(models.WordPiece({p: i for i, p in enumerate(vocab)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    tok.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    texts = random_texts(seed, 30, letters="abcdef")
    keep = trimmed_tokenizer(tok, texts)
    assert len(keep) < len(vocab)
    assert same_encodings(tok, keep, texts) == []
    small = json.loads(tok.to_str())
    out = trim_tokenizer_spec(small, keep)
    assert out["post_processor"]["sep"] == ["[SEP]", keep.index(3)]


def test_bpe_is_refused_by_name() -> None:
    tok = Tokenizer(
        models.BPE({"a": 0, "b": 1, "ab": 2, "<unk>": 3}, [("a", "b")], unk_token="<unk>")
    )
    with pytest.raises(NotImplementedError, match="not BPE"):
        trim_tokenizer_spec(json.loads(tok.to_str()), [0, 3])


def test_trim_spec_remaps_specials_and_refuses_dropping_them() -> None:
    vocab = xlmr_like_vocab(3)
    spec = json.loads(unigram(vocab, unk_id=3).to_str())
    mask = len(vocab) - 1
    spec["post_processor"] = {
        "type": "Sequence",
        "processors": [
            {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0]},
            {
                "type": "TemplateProcessing",
                "single": [],
                "pair": [],
                "special_tokens": {"<mask>": {"id": "<mask>", "ids": [mask], "tokens": ["<mask>"]}},
            },
        ],
    }
    spec["padding"] = {"pad_id": 1, "pad_token": "<pad>"}
    spec["added_tokens"] = [{"id": mask, "content": "<mask>", "special": True}]
    keep = sorted({0, 1, 2, 3, 10, 20, mask} | always_kept_ids(spec))
    out = trim_tokenizer_spec(spec, keep)
    assert out["model"]["vocab"] == [list(vocab[i]) for i in keep]
    assert out["model"]["unk_id"] == 3
    assert out["added_tokens"][0]["id"] == len(keep) - 1
    inner = out["post_processor"]["processors"]
    assert inner[0]["sep"] == ["</s>", 2]
    assert inner[1]["special_tokens"]["<mask>"]["ids"] == [len(keep) - 1]
    assert out["padding"]["pad_id"] == 1
    with pytest.raises(ValueError, match="must be kept"):
        trim_tokenizer_spec(spec, [0, 1, 2, 10])
    with pytest.raises(ValueError, match="ascending"):
        trim_tokenizer_spec(spec, list(reversed(keep)))


def test_trim_state_dict_selects_rows_and_needs_embeddings() -> None:
    tensors = {
        "embeddings.word_embeddings.weight": torch.arange(12.0).reshape(6, 2),
        "cls.predictions.bias": torch.arange(6.0),
        "embeddings.position_embeddings.weight": torch.zeros(6, 2),
    }
    out = trim_state_dict(tensors, [0, 2, 5], rows=6)
    assert out["embeddings.word_embeddings.weight"].tolist() == [[0, 1], [4, 5], [10, 11]]
    assert out["cls.predictions.bias"].tolist() == [0, 2, 5]
    assert out["embeddings.position_embeddings.weight"].shape == (6, 2)
    with pytest.raises(TrimError, match="no word-embedding tensor"):
        trim_state_dict({"x.weight": torch.zeros(6, 2)}, [0], rows=6)


# -- whole model directories ----------------------------------------------------------------------
EXTRA_ROWS = 3
"""Embedding rows beyond the tokenizer (e5-small has 35): never produced, always dropped."""


def tiny_config(vocab: int) -> BertConfig:
    return BertConfig(
        vocab_size=vocab,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=24,
        max_position_embeddings=64,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        tokenizer_class="XLMRobertaTokenizer",
    )


def save_dir(
    tmp_path: Path, name: str, *, mlm: bool = False, seed: int = 5
) -> tuple[Path, list[tuple[str, float]]]:
    vocab = xlmr_like_vocab(seed)
    directory = tmp_path / name
    torch.manual_seed(seed)
    config = tiny_config(len(vocab) + EXTRA_ROWS)
    model = BertForMaskedLM(config) if mlm else BertModel(config)
    model.eval().save_pretrained(directory)
    tok_file = xlmr_tokenizer_json(tmp_path / f"{name}-tokenizer.json", vocab)
    XLMRobertaTokenizerFast(tokenizer_file=str(tok_file), model_max_length=64).save_pretrained(
        directory
    )
    return directory, vocab


TEXTS = ["abc fed", "a b c", "cab  bad face", "dead beef", "ace", "fade a cafe"]


def last_hidden(directory: Path, texts: list[str]) -> torch.Tensor:
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModel.from_pretrained(directory, add_pooling_layer=False).eval()
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).last_hidden_state


def test_trim_vocabulary_is_exact_on_a_tiny_encoder(tmp_path: Path) -> None:
    source, vocab = save_dir(tmp_path, "enc")
    report = trim_vocabulary(source, TEXTS, tmp_path / "small", keep_ids=[7])
    out = tmp_path / "small"
    new_to_old = read_trim_map(out)
    assert report.vocab_before == len(vocab)
    assert report.vocab_after == len(new_to_old) < len(vocab)
    assert report.embedding_rows_before == len(vocab) + EXTRA_ROWS
    assert report.embedding_rows_after == len(new_to_old)
    assert {0, 1, 2, 3, len(vocab) - 1, 7} <= set(new_to_old)
    assert new_to_old[:4] == [0, 1, 2, 3] and new_to_old[-1] == len(vocab) - 1
    assert report.texts == len(TEXTS) and report.tokens > 0
    assert report.map_file == str(out / TRIM_MAP_FILENAME)

    old_tok, new_tok = AutoTokenizer.from_pretrained(source), AutoTokenizer.from_pretrained(out)
    assert len(new_tok) == len(new_to_old)
    assert new_tok.mask_token_id == len(new_to_old) - 1 and new_tok.pad_token_id == 1
    for text in [*TEXTS, "abc fed abc"]:
        old, new = old_tok(text)["input_ids"], new_tok(text)["input_ids"]
        assert [new_to_old[i] for i in new] == old
        assert new_tok.convert_ids_to_tokens(new) == old_tok.convert_ids_to_tokens(old)
    assert check_same_encodings(old_tok, new_tok, new_to_old, TEXTS, "t") == len(TEXTS)

    old_rows = load_file(str(source / "model.safetensors"))["embeddings.word_embeddings.weight"]
    new_rows = load_file(str(out / "model.safetensors"))["embeddings.word_embeddings.weight"]
    assert torch.equal(new_rows, old_rows[new_to_old])
    torch.testing.assert_close(
        last_hidden(out, TEXTS), last_hidden(source, TEXTS), atol=1e-5, rtol=0
    )

    h, removed = 16, len(vocab) + EXTRA_ROWS - len(new_to_old)
    before, after = report.params_before, report.params_after
    assert before == count_parameters(AutoModel.from_pretrained(source))
    assert after.word_embedding == len(new_to_old) * h
    assert before.total - after.total == removed * h
    assert after.non_word_embedding == before.non_word_embedding

    config = json.loads((out / "config.json").read_text())
    assert config["vocab_size"] == len(new_to_old)
    assert (config["pad_token_id"], config["bos_token_id"], config["eos_token_id"]) == (1, 0, 2)
    record = read_provenance(out)
    assert record["source"] == "trim" and "spec" not in record
    assert record["trim"]["vocab_after"] == len(new_to_old)


def test_trim_vocabulary_selects_tied_mlm_rows_and_bias(tmp_path: Path) -> None:
    source, _ = save_dir(tmp_path, "mlm", mlm=True, seed=8)
    trim_vocabulary(source, TEXTS, tmp_path / "small")
    out = tmp_path / "small"
    new_to_old = read_trim_map(out)
    before = load_file(str(source / "model.safetensors"))
    after = load_file(str(out / "model.safetensors"))
    for name, tensor in before.items():
        if name.endswith(("word_embeddings.weight", "predictions.bias", "decoder.bias")):
            assert torch.equal(after[name], tensor[new_to_old]), name
        else:
            assert torch.equal(after[name], tensor), name
    old_model = BertForMaskedLM.from_pretrained(source).eval()
    new_model = BertForMaskedLM.from_pretrained(out).eval()
    old_tok, new_tok = AutoTokenizer.from_pretrained(source), AutoTokenizer.from_pretrained(out)
    with torch.no_grad():
        old_logits = old_model(**old_tok(TEXTS[:1], return_tensors="pt")).logits
        new_logits = new_model(**new_tok(TEXTS[:1], return_tensors="pt")).logits
    torch.testing.assert_close(new_logits, old_logits[..., new_to_old], atol=1e-5, rtol=0)


def test_trim_vocabulary_on_a_wordpiece_encoder(tmp_path: Path) -> None:
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdef", "ab", "##c", "##de", "cafe"]
    vocab = {w: i for i, w in enumerate(words)}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    backend.decoder = decoders.WordPiece()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    source = tmp_path / "wp"
    torch.manual_seed(0)
    BertModel(tiny_config(len(words))).save_pretrained(source)
    tokenizer.save_pretrained(source)
    texts = ["abc de", "cafe", "zzz"]
    trim_vocabulary(source, texts, tmp_path / "small")
    new_to_old = read_trim_map(tmp_path / "small")
    assert "f" not in [words[i] for i in new_to_old]
    torch.testing.assert_close(
        last_hidden(tmp_path / "small", texts), last_hidden(source, texts), atol=1e-5, rtol=0
    )


def test_trim_vocabulary_is_atomic_and_checks_its_inputs(tmp_path: Path) -> None:
    source, vocab = save_dir(tmp_path, "enc")
    out = tmp_path / "small"
    with pytest.raises(ValueError, match="keep_ids"):
        trim_vocabulary(source, TEXTS, out, keep_ids=[len(vocab)])
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".small")]
    trim_vocabulary(source, TEXTS, out)
    with pytest.raises(FileExistsError):
        trim_vocabulary(source, TEXTS, out)
    report = trim_vocabulary(source, TEXTS[:1], out, overwrite=True)
    assert report.vocab_after == len(read_trim_map(out))
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors"):
        trim_vocabulary(tmp_path / "nowhere", TEXTS, tmp_path / "x")


def test_trim_map_is_new_to_old(tmp_path: Path) -> None:
    source, _ = save_dir(tmp_path, "enc")
    trim_vocabulary(source, ["abc"], tmp_path / "small")
    data = json.loads((tmp_path / "small" / TRIM_MAP_FILENAME).read_text())
    assert data["new_to_old"] == read_trim_map(tmp_path / "small")
    assert np.all(np.diff(data["new_to_old"]) > 0)
    assert data["vocab_after"] == len(data["new_to_old"])


def test_the_encoding_check_catches_a_different_segmentation(tmp_path: Path) -> None:
    source, _ = save_dir(tmp_path, "enc")
    trim_vocabulary(source, TEXTS, tmp_path / "small")
    new_to_old = read_trim_map(tmp_path / "small")
    old_tok = AutoTokenizer.from_pretrained(source)
    new_tok = AutoTokenizer.from_pretrained(tmp_path / "small")
    expected = encode_texts(old_tok.backend_tokenizer, TEXTS)
    assert len(expected) == len(TEXTS) and expected.special_tokens == 2 * len(TEXTS)
    check_encodings_match(old_tok, new_tok, new_to_old, TEXTS, expected, "t")
    expected.spans[3] += 1
    with pytest.raises(TrimError, match="the trimmed tokenizer encodes"):
        check_encodings_match(old_tok, new_tok, new_to_old, TEXTS, expected, "t")
    shifted = [*new_to_old[:5], *(i + 1 for i in new_to_old[5:-1]), new_to_old[-1]]
    with pytest.raises(TrimError, match="new id 5 is"):
        check_encodings_match(old_tok, new_tok, shifted, TEXTS, expected, "t")
