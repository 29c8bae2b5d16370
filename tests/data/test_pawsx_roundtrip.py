"""Writing PAWS-X TSVs (for hub exports) reads back to the same pairs, quotes and tabs included."""

from __future__ import annotations

from pathlib import Path

from xstilts.data.pawsx import read_pawsx_tsv, write_pawsx_tsv
from xstilts.data.records import PairExample


def test_write_then_read_is_identity(tmp_path: Path) -> None:
    pairs = [
        PairExample("1", '"Angel Eyes" is a song', "plain text", 1),
        PairExample("2", "NS", 'ends with a quote"', 0),
        PairExample("3", '"fully quoted"', "x", 0),
    ]
    path = write_pawsx_tsv(tmp_path / "de" / "dev_2k.tsv", pairs)
    assert read_pawsx_tsv(path).examples == pairs
