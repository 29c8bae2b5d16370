"""Reader for CCGbank `.auto` derivations (LDC2005T13): words and their lexical categories.
Each `ID=...` line is followed by one tree line; its leaves give the supertag sequence."""

from __future__ import annotations

import re
from pathlib import Path

from xstilts.data.errors import DataFormatError
from xstilts.data.io import iter_lines
from xstilts.data.records import TaggedSentence

# The conventional CCG supertagging split of CCGbank's WSJ sections.
CCGBANK_SPLIT_SECTIONS: dict[str, tuple[int, ...]] = {
    "train": tuple(range(2, 22)),
    "dev": (0,),
    "test": (23,),
}

_ID_LINE = re.compile(r"ID=(\S+)(?:\s|$)")


def _leaves(path: Path, lineno: int, tree: str) -> tuple[list[str], list[str]]:
    """Words and categories of one tree line, checking that its brackets nest.

    A tree is a sequence of `(<T cat head n>`, `(<L cat mpos opos word pacat>)` and `)` tokens
    separated by spaces; a leaf must have exactly those 5 fields after `L`."""
    words: list[str] = []
    categories: list[str] = []
    depth = 0
    i, n = 0, len(tree)
    while i < n:
        char = tree[i]
        if char.isspace():
            i += 1
        elif tree.startswith("(<L ", i):
            end = tree.find(">)", i)
            if end < 0:
                raise DataFormatError(path, lineno, f"leaf at column {i + 1} has no closing '>)'")
            fields = tree[i + 4 : end].split()
            if len(fields) != 5:
                raise DataFormatError(
                    path,
                    lineno,
                    f"leaf at column {i + 1} should be (<L category modified-POS original-POS "
                    f"word predarg-category>), found {tree[i : end + 2]!r}",
                )
            categories.append(fields[0])
            words.append(fields[3])
            i = end + 2
        elif tree.startswith("(<T ", i):
            end = tree.find(">", i)
            if end < 0 or len(tree[i + 4 : end].split()) != 3:
                raise DataFormatError(
                    path, lineno, f"node at column {i + 1} should be (<T category head children>"
                )
            depth += 1
            i = end + 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise DataFormatError(path, lineno, f"unmatched ')' at column {i + 1}")
            i += 1
        else:
            raise DataFormatError(
                path, lineno, f"unexpected {tree[i : i + 20]!r} at column {i + 1} of the tree"
            )
    if depth != 0:
        raise DataFormatError(path, lineno, f"{depth} unclosed '(<T' node(s) in the tree")
    if not words:
        raise DataFormatError(path, lineno, "tree has no (<L ...>) leaves")
    return words, categories


def read_ccgbank_auto(path: str | Path) -> list[TaggedSentence]:
    """Read one `.auto` file: for each `ID=wsj_0001.1 PARSER=GOLD NUMPARSE=1` line and the tree
    line after it, a TaggedSentence of the leaf words and their categories (the leaf's second
    field, e.g. `N/N` in `(<L N/N NNP NNP Pierre N_73/N_73>)`), with the ID as id. Words are
    kept as in CCGbank (brackets as -LRB- / -RRB-). Blank lines are ignored."""
    path = Path(path)
    sentences: list[TaggedSentence] = []
    pending: tuple[int, str] | None = None
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        if line.startswith("ID="):
            if pending is not None:
                raise DataFormatError(
                    path, lineno, f"expected the tree of {pending[1]} (line {pending[0]})"
                )
            match = _ID_LINE.match(line)
            if match is None:
                raise DataFormatError(path, lineno, f"malformed ID line {line[:80]!r}")
            pending = (lineno, match.group(1))
            continue
        if pending is None:
            raise DataFormatError(path, lineno, f"expected an ID= line, found {line[:80]!r}")
        words, categories = _leaves(path, lineno, line.strip())
        sentences.append(TaggedSentence(pending[1], tuple(words), tuple(categories)))
        pending = None
    if pending is not None:
        raise DataFormatError(path, pending[0], f"{pending[1]} has no tree line")
    return sentences


def read_ccgbank_split(auto_root: str | Path, split: str) -> list[TaggedSentence]:
    """Read a standard split (CCGBANK_SPLIT_SECTIONS: train 02-21, dev 00, test 23) from
    CCGbank's `data/AUTO` folder, whose sections are `NN/wsj_NNxx.auto`, in file-name order."""
    if split not in CCGBANK_SPLIT_SECTIONS:
        raise KeyError(f"unknown CCGbank split {split!r}; known: {sorted(CCGBANK_SPLIT_SECTIONS)}")
    root = Path(auto_root)
    files: list[Path] = []
    for section in CCGBANK_SPLIT_SECTIONS[split]:
        folder = root / f"{section:02d}"
        found = sorted(folder.glob("*.auto"))
        if not found:
            raise FileNotFoundError(
                f"no .auto files in {folder} (section {section:02d} of {split})"
            )
        files.extend(found)
    return [sentence for file in files for sentence in read_ccgbank_auto(file)]
