"""Only safetensors are ever loaded: no `torch.load` and no pickle anywhere in the package."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
FORBIDDEN = re.compile(r"torch\.load\b|pickle", re.IGNORECASE)


def test_no_torch_load_or_pickle_in_src() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20
    hits = [
        f"{path.relative_to(SRC)}:{n}: {line.strip()}"
        for path in files
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    assert not hits, "weights must be loaded from safetensors only:\n" + "\n".join(hits)
