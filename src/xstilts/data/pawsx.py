"""PAWS-X and PAWS-Wiki: TSV reader, upstream x-final layout, release download and the hub.
Text comes back as the translators wrote it: CSV quoting undone, `NS` placeholders kept."""

from __future__ import annotations

import importlib
import shutil
import tarfile
import tempfile
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from xstilts.data.errors import DataFormatError
from xstilts.data.io import iter_lines
from xstilts.data.records import PairExample
from xstilts.hashing import copy_sha256

PAWSX_LANGS: tuple[str, ...] = ("en", "de", "es", "fr", "ja", "ko", "zh")
PAWSX_HEADER: tuple[str, ...] = ("id", "sentence1", "sentence2", "label")
_HEADER_LINE = "\t".join(PAWSX_HEADER)
NS_PLACEHOLDER = "NS"
PAWSX_RELEASE_URL = "https://storage.googleapis.com/paws/pawsx/x-final.tar.gz"
PAWSX_RELEASE_DIR = "x-final"
PAWSX_HF_DATASET = "google-research-datasets/paws-x"

# split name -> upstream file names, first one preferred; English train is `train.tsv`, the
# translated languages ship `translated_train.tsv`; either name is accepted for any language.
_SPLIT_FILES: dict[str, tuple[str, ...]] = {
    "dev": ("dev_2k.tsv",),
    "test": ("test_2k.tsv",),
    "train": ("train.tsv", "translated_train.tsv"),
}
_SPLIT_ALIASES = {"validation": "dev", "dev_2k": "dev", "test_2k": "test"}
_HF_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


@dataclass(frozen=True, slots=True)
class PawsxFile:
    """The pairs of one PAWS-X / PAWS-Wiki split and what was noticed while reading it.

    `path` names the source: a file path, or `hf:<dataset>/<lang>/<split>` for the hub.
    `ns_count` counts sentences equal to the `NS` placeholder (a pair can hold two);
    `ns_pairs` counts pairs with at least one; `empty_count` counts empty sentences."""

    path: str
    examples: list[PairExample]
    ns_count: int
    ns_pairs: int
    empty_count: int


def unquote_field(field: str) -> str:
    """Undo CSV-style quoting of one TSV field: `"a ""b"" c"` -> `a "b" c`.

    Only a field that is wrapped in quotes and whose inner quotes are all doubled is unquoted;
    anything else (e.g. a sentence that merely starts with a quote) is returned unchanged."""
    if len(field) < 2 or field[0] != '"' or field[-1] != '"':
        return field
    inner = field[1:-1]
    if '"' in inner.replace('""', ""):
        return field
    return inner.replace('""', '"')


def _summarise(path: str, examples: list[PairExample]) -> PawsxFile:
    ns_count = ns_pairs = empty_count = 0
    for ex in examples:
        sides = (ex.text_a, ex.text_b)
        n_ns = sum(side == NS_PLACEHOLDER for side in sides)
        ns_count += n_ns
        ns_pairs += int(n_ns > 0)
        empty_count += sum(side == "" for side in sides)
    return PawsxFile(path, examples, ns_count, ns_pairs, empty_count)


def read_pawsx_tsv(path: str | Path) -> PawsxFile:
    """Read a PAWS-X / PAWS-Wiki TSV (header `id sentence1 sentence2 label`, `.gz` allowed).

    Blank lines are skipped; CRLF ends are accepted. A missing or wrong header, a row without
    exactly four fields, an empty or repeated id, a label other than 0/1 or undecodable bytes
    raise DataFormatError naming the file and line."""
    examples: list[PairExample] = []
    seen: dict[str, int] = {}
    header_seen = False
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        fields = line.split("\t")
        if not header_seen:
            if tuple(fields) != PAWSX_HEADER:
                raise DataFormatError(
                    path,
                    lineno,
                    f"expected the header {_HEADER_LINE!r}, found {line[:80]!r}",
                )
            header_seen = True
            continue
        if len(fields) != len(PAWSX_HEADER):
            raise DataFormatError(
                path, lineno, f"expected 4 tab-separated fields, found {len(fields)}"
            )
        pair_id, sentence1, sentence2, label = fields
        if not pair_id.strip():
            raise DataFormatError(path, lineno, "empty id")
        if pair_id in seen:
            raise DataFormatError(
                path, lineno, f"duplicate id {pair_id!r} (first on line {seen[pair_id]})"
            )
        seen[pair_id] = lineno
        if label not in ("0", "1"):
            raise DataFormatError(path, lineno, f"label must be 0 or 1, found {label!r}")
        examples.append(
            PairExample(pair_id, unquote_field(sentence1), unquote_field(sentence2), int(label))
        )
    if not header_seen:
        raise DataFormatError(path, None, "empty file: no header `id sentence1 sentence2 label`")
    return _summarise(str(path), examples)


def _canonical_split(split: str) -> str:
    split = _SPLIT_ALIASES.get(split, split)
    if split not in _SPLIT_FILES:
        raise ValueError(f"unknown PAWS-X split {split!r}; expected one of {sorted(_SPLIT_FILES)}")
    return split


def _check_lang(lang: str) -> None:
    if lang not in PAWSX_LANGS:
        raise ValueError(f"unknown PAWS-X language {lang!r}; expected one of {PAWSX_LANGS}")


def pawsx_split_path(root: str | Path, lang: str, split: str) -> Path:
    """The file of `split` (train / dev / test) for `lang` under an x-final style `root`.

    Train is `train.tsv` or `translated_train.tsv` (upstream uses the first for English, the
    second for the translations; whichever exists wins, also as `.gz`). When no candidate exists
    the upstream name is returned, so reading it raises FileNotFoundError naming it."""
    _check_lang(lang)
    split = _canonical_split(split)
    names = _SPLIT_FILES[split]
    folder = Path(root) / lang
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    if split == "train" and lang != "en":
        return folder / "translated_train.tsv"
    return folder / names[0]


# ----------------------------------------------------------------------------- release download


def _safe_member_path(member: tarfile.TarInfo, archive: str) -> PurePosixPath:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or "\\" in member.name:
        raise DataFormatError(archive, None, f"unsafe path in archive: {member.name!r}")
    if not (member.isfile() or member.isdir()):
        raise DataFormatError(
            archive, None, f"archive member {member.name!r} is not a regular file or folder"
        )
    if not name.parts or name.parts[0] != PAWSX_RELEASE_DIR:
        raise DataFormatError(
            archive, None, f"archive member {member.name!r} is outside {PAWSX_RELEASE_DIR}/"
        )
    return name


def _missing_release_files(present: Iterable[PurePosixPath]) -> list[str]:
    have = {str(p) for p in present}
    missing = []
    for lang in PAWSX_LANGS:
        for split, names in _SPLIT_FILES.items():
            paths = [f"{PAWSX_RELEASE_DIR}/{lang}/{name}" for name in names]
            if not any(p in have for p in paths):
                missing.append(f"{PAWSX_RELEASE_DIR}/{lang}/{' or '.join(names)} ({split})")
    return missing


def _checked_members(tar: tarfile.TarFile, archive: str) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    paths = [_safe_member_path(m, archive) for m in members]
    missing = _missing_release_files(p for p, m in zip(paths, members, strict=True) if m.isfile())
    if missing:
        raise DataFormatError(
            archive, None, f"not the PAWS-X x-final release; missing: {', '.join(missing)}"
        )
    return members


def _open_tar(archive: Path, shown: str) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, "r:*")
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DataFormatError(shown, None, f"not a readable tar archive: {err}") from None


def verify_pawsx_archive(archive: str | Path) -> list[tarfile.TarInfo]:
    """Check that `archive` is a tar(.gz) holding only `x-final/<lang>/...` files and folders.

    Every language needs a train, dev and test file. Returns the members; raises DataFormatError
    on a non-tar file, an unsafe member (absolute, `..`, link, device) or a missing file."""
    with _open_tar(Path(archive), str(archive)) as tar:
        return _checked_members(tar, str(archive))


def _download(url: str, target: Path, timeout: float) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
        return copy_sha256(response, out)[0]


def download_pawsx_release(
    dest: str | Path,
    *,
    url: str = PAWSX_RELEASE_URL,
    sha256: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download and unpack the official PAWS-X release; returns `<dest>/x-final`.

    Atomic: the archive goes to a temporary folder inside `dest`, is checked (a tar holding the
    x-final layout, no unsafe members, optional `sha256` of the archive), extracted there and
    only then renamed to `<dest>/x-final`. An existing complete `<dest>/x-final` is returned
    without downloading. `url` may be any urllib URL, e.g. `file://` for a local copy."""
    dest = Path(dest)
    final = dest / PAWSX_RELEASE_DIR
    if final.exists():
        missing = _missing_release_files(
            PurePosixPath(p.relative_to(dest).as_posix()) for p in final.rglob("*") if p.is_file()
        )
        if missing:
            raise FileExistsError(
                f"{final} exists but is incomplete (missing {', '.join(missing)}); remove it first"
            )
        return final
    dest.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".pawsx-download-", dir=dest))
    try:
        archive = work / "x-final.tar.gz"
        got = _download(url, archive, timeout)
        if sha256 is not None and got != sha256.lower():
            raise DataFormatError(url, None, f"sha256 {got} does not match expected {sha256}")
        unpacked = work / "unpacked"
        with _open_tar(archive, url) as tar:
            members = _checked_members(tar, url)
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: the library's own guard too
                tar.extractall(unpacked, members=members, filter="data")
            else:  # pragma: no cover - older 3.11 patch releases
                tar.extractall(unpacked, members=members)  # members were checked above
        (unpacked / PAWSX_RELEASE_DIR).rename(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


# ------------------------------------------------------------------------------ Hugging Face hub


def _row_label(row: Mapping[str, Any], source: str, index: int) -> int:
    label = row["label"]
    if isinstance(label, str) and label in ("0", "1"):
        return int(label)
    if isinstance(label, int) and not isinstance(label, bool) and label in (0, 1):
        return label
    raise DataFormatError(source, None, f"row {index}: label must be 0 or 1, found {label!r}")


def load_pawsx_from_hf(lang: str, split: str, *, cache_dir: str | Path | None = None) -> PawsxFile:
    """Load one PAWS-X split from the Hugging Face hub (`datasets` is an optional dependency).

    The hub copy keeps the release's CSV quotes (it is read with QUOTE_NONE); they are undone
    here exactly as in `read_pawsx_tsv`, so both sources give the same text."""
    _check_lang(lang)
    canonical = _canonical_split(split)
    try:
        datasets = importlib.import_module("datasets")
    except ImportError as err:
        raise ImportError(
            "loading PAWS-X from the hub needs the optional `datasets` package: "
            "pip install 'xstilts[hub]'"
        ) from err
    hf_split = _HF_SPLITS[canonical]
    source = f"hf:{PAWSX_HF_DATASET}/{lang}/{hf_split}"
    kwargs: dict[str, Any] = {"split": hf_split}
    if cache_dir is not None:
        kwargs["cache_dir"] = str(cache_dir)
    rows = datasets.load_dataset(PAWSX_HF_DATASET, lang, **kwargs)
    examples: list[PairExample] = []
    seen: set[str] = set()
    for index, row in enumerate(rows):
        pair_id = str(row["id"])
        if pair_id in seen:
            raise DataFormatError(source, None, f"row {index}: duplicate id {pair_id!r}")
        seen.add(pair_id)
        examples.append(
            PairExample(
                pair_id,
                unquote_field(row["sentence1"]),
                unquote_field(row["sentence2"]),
                _row_label(row, source, index),
            )
        )
    return _summarise(source, examples)


def _tsv_field(text: str) -> str:
    """Quote a field CSV-style when it holds a quote, as the release does, so it reads back exactly."""
    if '"' in text or "\t" in text or "\n" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def write_pawsx_tsv(path: str | Path, examples: Iterable[PairExample]) -> Path:
    """Write pairs in the upstream layout (`id sentence1 sentence2 label` header), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as out:
        out.write("id\tsentence1\tsentence2\tlabel\n")
        for ex in examples:
            fields = (ex.id, _tsv_field(ex.text_a), _tsv_field(ex.text_b or ""), str(ex.label))
            out.write("\t".join(fields) + "\n")
    tmp.replace(path)
    return path


def export_pawsx_from_hf(dest: str | Path, langs: Iterable[str] = PAWSX_LANGS) -> Path:
    """Write the hub's PAWS-X (all splits of `langs`) as an x-final folder `<dest>/<lang>/*.tsv`."""
    dest = Path(dest)
    for lang in langs:
        for split in ("train", "dev", "test"):
            pf = load_pawsx_from_hf(lang, split)
            write_pawsx_tsv(pawsx_split_path(dest, lang, split), pf.examples)
    return dest
