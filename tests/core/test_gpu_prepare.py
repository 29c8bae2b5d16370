"""scripts/gpu/prepare.sh --data-only: the bundle's data dir, with the pretraining corpus cut
to the very bytes the published scratch runs' stage keys rest on."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gpu" / "prepare.sh"
PROVENANCE = REPO / "docs/results/pawsx-scaling/gpu-call-3/logs/provenance-scratch-1m.json"


def _prepare(shared: Path, data: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHARED_DATA": str(shared), "GPU_DATA": str(data)}
    return subprocess.run(
        ["bash", str(SCRIPT), "--data-only"], env=env, capture_output=True, text=True, timeout=300
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _shared_with(tmp_path: Path, corpus: dict[str, Path]) -> Path:
    """A shared/data stand-in: one task folder and multilingual-text with the given files."""
    shared = tmp_path / "shared"
    (shared / "paws-wiki").mkdir(parents=True)
    (shared / "paws-wiki" / "test.tsv").write_text("id\tsentence1\n", encoding="utf-8")
    (shared / "multilingual-text").mkdir()
    for lang, source in corpus.items():
        (shared / "multilingual-text" / f"{lang}.txt.gz").symlink_to(source)
    return shared


def test_the_cut_corpus_has_the_bytes_the_gpu_runs_hashed(tmp_path: Path, shared_data: Path):
    text = shared_data / "multilingual-text"
    shared = _shared_with(tmp_path, {lang: text / f"{lang}.txt.gz" for lang in ("en", "ko", "de")})
    data = tmp_path / "data"
    done = _prepare(shared, data)
    assert done.returncode == 0, done.stderr
    recorded = json.loads(PROVENANCE.read_text(encoding="utf-8"))["trimmed_from"]["fingerprint"]
    for lang in ("en", "ko"):
        out = data / "multilingual-text" / f"{lang}.txt.gz"
        assert not out.is_symlink() and _sha256(out) == recorded["corpus"][lang]
    # the other languages and the task files are copies of the shared ones
    assert _sha256(data / "multilingual-text" / "de.txt.gz") == recorded["corpus"]["de"]
    assert (data / "paws-wiki" / "test.tsv").read_text(encoding="utf-8") == "id\tsentence1\n"
    with gzip.open(data / "multilingual-text" / "ko.txt.gz", "rt", encoding="utf-8") as f:
        assert sum(1 for _ in f) == 65_000
    # a second run finds the cut in place and keeps it
    cut = data / "multilingual-text" / "en.txt.gz"
    written = cut.stat().st_mtime_ns
    again = _prepare(shared, data)
    assert again.returncode == 0 and "SHA-256 as published" in again.stdout
    assert cut.stat().st_mtime_ns == written


def test_another_corpus_is_refused_with_the_file_named(tmp_path: Path):
    small = {}
    for lang in ("en", "ko"):
        small[lang] = tmp_path / f"{lang}-source.txt.gz"
        small[lang].write_bytes(gzip.compress(f"{lang} line one\n{lang} line two\n".encode()))
    shared = _shared_with(tmp_path, small)
    done = _prepare(shared, tmp_path / "data")
    assert done.returncode == 1
    assert "multilingual-text/" in done.stderr and ".txt.gz: SHA-256 " in done.stderr
    assert "the scratch rungs' keys would not match the published runs" in done.stderr
