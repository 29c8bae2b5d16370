#!/usr/bin/env python
"""How much a GPU call would carry up, before spending device time on it: the working tree the
device tool copies (files git tracks, as they are now, plus untracked files git does not
ignore) and the ignored paths named in `carry`, against the call's 64 MiB. A call over the limit
fails without running, so check after the tree or the bundle has grown:

    python scripts/gpu/carry_size.py .gpu/bundle.tar.xz .gpu/whl .gpu/tiers.txt

Prints the three parts, the total and the margin; exits 1 when the total is over the limit.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

LIMIT = 64 * 1024 * 1024
"""What the device tool carries with one call: working tree and carried paths together."""


def tree_files(repo: Path) -> list[Path]:
    """Files git tracks (those deleted in the working tree left out) and untracked files it
    does not ignore: what travels without `carry`."""
    out = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
    ).stdout
    names = sorted({n for n in out.decode().split("\0") if n})
    return [repo / n for n in names if (repo / n).is_file()]


def path_bytes(path: Path) -> int:
    """Bytes of a file, or of every file below a folder (links not followed)."""
    if path.is_symlink():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def carry_report(repo: Path, carry: list[str], limit: int = LIMIT) -> tuple[int, list[str]]:
    """(total bytes, report lines) for the tree of `repo` plus the `carry` paths."""
    tree = sum(f.stat().st_size for f in tree_files(repo))
    lines = [f"working tree (tracked + untracked, not ignored): {tree / 2**20:8.2f} MiB"]
    total = tree
    for name in carry:
        path = repo / name
        if not path.exists():
            raise SystemExit(f"carry path {name}: not found below {repo}")
        size = path_bytes(path)
        total += size
        lines.append(f"carry {name}: {size / 2**20:8.2f} MiB")
    margin = limit - total
    verdict = "fits" if margin >= 0 else "OVER THE LIMIT"
    lines.append(
        f"total {total / 2**20:.2f} MiB of {limit / 2**20:.0f} MiB: {verdict} "
        f"(margin {margin / 2**20:+.2f} MiB)"
    )
    return total, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("carry", nargs="*", help="ignored paths the call names in `carry`")
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[2])
    parser.add_argument("--limit-mib", type=float, default=LIMIT / 2**20)
    args = parser.parse_args(argv)
    limit = int(args.limit_mib * 2**20)
    total, lines = carry_report(args.repo, args.carry, limit)
    print("\n".join(lines))
    return 0 if total <= limit else 1


if __name__ == "__main__":
    sys.exit(main())
