"""Cache keys: equal inputs give equal keys; any change to what determines a stage changes it."""

from __future__ import annotations

from pathlib import Path

from xstilts.hashing import canonical_json, content_key, file_sha256


def test_key_is_order_independent_and_sensitive() -> None:
    a = content_key("target", {"lr": 1e-5, "seed": 1, "deps": ["x"]})
    b = content_key("target", {"seed": 1, "deps": ["x"], "lr": 1e-5})
    assert a == b and a.startswith("target-") and len(a) == len("target-") + 20
    assert content_key("target", {"lr": 2e-5, "seed": 1, "deps": ["x"]}) != a
    assert content_key("target", {"lr": 1e-5, "seed": 2, "deps": ["x"]}) != a
    assert content_key("evaluate", {"lr": 1e-5, "seed": 1, "deps": ["x"]}) != a


def test_canonical_json_exact() -> None:
    assert canonical_json({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'


def test_file_hash_tracks_content(tmp_path: Path) -> None:
    p = tmp_path / "f.tsv"
    p.write_bytes(b"abc")
    assert file_sha256(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    p.write_bytes(b"abcd")
    assert file_sha256(p) == "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589"
