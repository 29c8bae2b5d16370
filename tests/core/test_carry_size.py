"""scripts/gpu/carry_size.py: what a GPU call carries up, against its limit."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def m(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script("gpu/carry_size.py")


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".gitignore").write_text("big/\n")  # 5 bytes
    (repo / "tracked.txt").write_bytes(b"x" * 100)
    subprocess.run(["git", "-C", str(repo), "add", ".gitignore", "tracked.txt"], check=True)
    (repo / "untracked.txt").write_bytes(b"y" * 10)  # travels: git does not ignore it
    (repo / "big").mkdir()
    (repo / "big" / "bundle.tar.xz").write_bytes(b"z" * 1000)  # ignored: only when carried
    (repo / "big" / "whl").mkdir()
    (repo / "big" / "whl" / "a.whl").write_bytes(b"w" * 24)
    return repo


def test_tree_counts_tracked_and_unignored_files_and_carry_adds_ignored_ones(
    m: ModuleType, tmp_path: Path
) -> None:
    repo = _repo(tmp_path)
    assert sorted(p.name for p in m.tree_files(repo)) == [
        ".gitignore",
        "tracked.txt",
        "untracked.txt",
    ]
    total, lines = m.carry_report(repo, [], limit=200)
    assert total == 5 + 100 + 10
    total, lines = m.carry_report(repo, ["big/bundle.tar.xz", "big/whl"], limit=2000)
    assert total == 115 + 1000 + 24
    assert "fits" in lines[-1]


def test_over_the_limit_exits_nonzero_and_a_missing_carry_path_is_named(
    m: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _repo(tmp_path)
    limit_mib = 1000 / 2**20  # 1,000 bytes: the tree fits, tree + bundle does not
    assert m.main(["--repo", str(repo), "--limit-mib", str(limit_mib)]) == 0
    assert m.main(["--repo", str(repo), "--limit-mib", str(limit_mib), "big/bundle.tar.xz"]) == 1
    assert "OVER THE LIMIT" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"carry path nope\.tar: not found"):
        m.main(["--repo", str(repo), "nope.tar"])
