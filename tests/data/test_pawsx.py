"""Tests for xstilts.data.pawsx: the TSV reader, split paths, release download and hub loader.
Synthetic files in the upstream format, plus slow real-data checks on the shared copies."""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
import types
from collections.abc import Sequence
from pathlib import Path

import pytest

from xstilts.data.errors import DataFormatError
from xstilts.data.pawsx import (
    PAWSX_HF_DATASET,
    PAWSX_LANGS,
    download_pawsx_release,
    load_pawsx_from_hf,
    pawsx_split_path,
    read_pawsx_tsv,
    unquote_field,
    verify_pawsx_archive,
)
from xstilts.data.records import PairExample

HEADER = "id\tsentence1\tsentence2\tlabel\n"


def _tsv(*rows: str, header: str = HEADER, end: str = "\n") -> str:
    return (header + "".join(f"{row}\n" for row in rows)).replace("\n", end)


# ------------------------------------------------------------------------------- reading


def test_reads_pairs_with_string_ids_and_int_labels(write_file):
    path = write_file("dev_2k.tsv", _tsv("1\tA cat .\tThe cat .\t1", "17\tB\tC\t0"))
    result = read_pawsx_tsv(path)
    assert result.examples == [
        PairExample("1", "A cat .", "The cat .", 1),
        PairExample("17", "B", "C", 0),
    ]
    assert result.path == str(path)
    assert (result.ns_count, result.ns_pairs, result.empty_count) == (0, 0, 0)


def test_csv_quoted_fields_are_unquoted(write_file):
    path = write_file(
        "dev_2k.tsv",
        _tsv(
            '68\t"""Angel Eyes"" is a song from 1946."\t"Die ""IPA"" hat 500 Symbole."\t0',
            '69\t"Er sagte, ""ja"", und ging."\t"Album "", weil er rein ist."\t1',
        ),
    )
    a, b = read_pawsx_tsv(path).examples
    assert a.text_a == '"Angel Eyes" is a song from 1946.'
    assert a.text_b == 'Die "IPA" hat 500 Symbole.'
    assert b.text_a == 'Er sagte, "ja", und ging.'
    assert b.text_b == 'Album ", weil er rein ist.'


def test_fields_that_are_not_csv_quoted_are_kept(write_file):
    # as in copies whose outer quotes a pandas round-trip removed
    path = write_file(
        "dev_2k.tsv", _tsv('1\t"Angel Eyes" ist ein Lied.\tSie sagte „ja“ .\t1', '2\t"\t"a"b"\t0')
    )
    a, b = read_pawsx_tsv(path).examples
    assert (a.text_a, a.text_b) == ('"Angel Eyes" ist ein Lied.', "Sie sagte „ja“ .")
    assert (b.text_a, b.text_b) == ('"', '"a"b"')


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ('"""Angel Eyes"" ..."', '"Angel Eyes" ...'),
        ('"plain"', "plain"),
        ('""', ""),
        ('""""', '"'),
        ('"a"b"', '"a"b"'),
        ('"open only', '"open only'),
        ('close only"', 'close only"'),
        ("no quotes", "no quotes"),
        ('"', '"'),
    ],
)
def test_unquote_field(field, expected):
    assert unquote_field(field) == expected


def test_ns_placeholders_are_kept_and_counted(write_file):
    path = write_file(
        "dev_2k.tsv",
        _tsv("1\tDie Straße .\tNS\t0", "2\tNS\tNS\t0", "3\tA\tB\t1", "4\tNSA\t NS\t1", "5\t\tB\t0"),
    )
    result = read_pawsx_tsv(path)
    assert [e.text_b for e in result.examples[:2]] == ["NS", "NS"]
    assert result.ns_count == 3
    assert result.ns_pairs == 2
    assert result.empty_count == 1
    assert len(result.examples) == 5


def test_crlf_file(write_file):
    path = write_file("test.tsv", _tsv("1\tA\tB\t1", '2\t"""q"""\tC\t0', end="\r\n"))
    result = read_pawsx_tsv(path)
    assert result.examples == [PairExample("1", "A", "B", 1), PairExample("2", '"q"', "C", 0)]


def test_blank_lines_are_skipped_anywhere(write_file):
    text = "\n\r\n" + HEADER + "1\tA\tB\t1\n\n  \n\r\n2\tC\tD\t0\n\n\n"
    result = read_pawsx_tsv(write_file("dev_2k.tsv", text))
    assert [e.id for e in result.examples] == ["1", "2"]


def test_gz_file(write_file):
    path = write_file("translated_train.tsv.gz", _tsv("1\t猫\tネコ\t1"))
    assert read_pawsx_tsv(path).examples == [PairExample("1", "猫", "ネコ", 1)]


def test_header_only_gives_no_examples(write_file):
    assert read_pawsx_tsv(write_file("dev_2k.tsv", HEADER)).examples == []


# -------------------------------------------------------------------------- malformed rows


def _error(path: Path) -> DataFormatError:
    with pytest.raises(DataFormatError) as info:
        read_pawsx_tsv(path)
    assert info.value.path == str(path)
    return info.value


@pytest.mark.parametrize(
    ("rows", "line", "problem"),
    [
        (["1\tA\tB\t1", "2\tA\tB"], 3, "expected 4 tab-separated fields, found 3"),
        (["1\tA\tB\t1\textra"], 2, "expected 4 tab-separated fields, found 5"),
        (["1\tA\tB\t1", "2\tA\tB\t1", "3\tA\tB\t2"], 4, "label must be 0 or 1, found '2'"),
        (["1\tA\tB\t"], 2, "label must be 0 or 1, found ''"),
        (["1\tA\tB\t1.0"], 2, "label must be 0 or 1, found '1.0'"),
        (["1\tA\tB\t-1"], 2, "label must be 0 or 1, found '-1'"),
        (["1\tA\tB\t1", "\tA\tB\t0"], 3, "empty id"),
        (["1\tA\tB\t1", " \tA\tB\t0"], 3, "empty id"),
        (["7\tA\tB\t1", "8\tA\tB\t0", "7\tC\tD\t0"], 4, "duplicate id '7' (first on line 2)"),
    ],
)
def test_malformed_rows(write_file, rows, line, problem):
    err = _error(write_file("dev_2k.tsv", _tsv(*rows)))
    assert err.line == line
    assert err.problem == problem


def test_line_numbers_count_blank_lines_and_crlf(write_file):
    text = HEADER + "1\tA\tB\t1\r\n\r\n\r\n2\tA\tB\t3\r\n"
    assert _error(write_file("dev_2k.tsv", text)).line == 5


def test_undecodable_bytes(write_file):
    data = _tsv("1\tA\tB\t1").encode() + b"2\tA \xe9t\xe9\tB\t0\n"
    err = _error(write_file("dev_2k.tsv", data))
    assert err.line == 3
    assert "UTF-8" in err.problem


def test_missing_header(write_file):
    err = _error(write_file("dev_2k.tsv", "1\tA\tB\t1\n2\tC\tD\t0\n"))
    assert err.line == 1
    assert "expected the header" in err.problem


@pytest.mark.parametrize(
    "header",
    ["id\tsentence1\tsentence2\n", "id\tsentence2\tsentence1\tlabel\n", "ID\tS1\tS2\tLABEL\n"],
)
def test_wrong_header(write_file, header):
    err = _error(write_file("dev_2k.tsv", _tsv("1\tA\tB\t1", header=header)))
    assert err.line == 1


def test_header_after_blank_lines_is_found_on_its_line(write_file):
    err = _error(write_file("dev_2k.tsv", "\n\n1\tA\tB\t1\n"))
    assert err.line == 3


def test_empty_file(write_file):
    err = _error(write_file("dev_2k.tsv", "\n"))
    assert err.line is None
    assert "empty file" in err.problem


# ------------------------------------------------------------------------------ split paths


def test_split_paths_follow_x_final_names(tmp_path):
    assert pawsx_split_path(tmp_path, "de", "dev") == tmp_path / "de" / "dev_2k.tsv"
    assert pawsx_split_path(tmp_path, "de", "validation") == tmp_path / "de" / "dev_2k.tsv"
    assert pawsx_split_path(tmp_path, "zh", "test") == tmp_path / "zh" / "test_2k.tsv"
    # nothing on disk: the upstream name of each language's train file
    assert pawsx_split_path(tmp_path, "en", "train") == tmp_path / "en" / "train.tsv"
    assert pawsx_split_path(tmp_path, "fr", "train") == tmp_path / "fr" / "translated_train.tsv"


def test_split_paths_accept_either_train_name_and_gz(write_file, tmp_path):
    write_file("en/translated_train.tsv", HEADER)
    write_file("ja/train.tsv", HEADER)
    write_file("ko/translated_train.tsv.gz", HEADER)
    write_file("es/test_2k.tsv.gz", HEADER)
    assert pawsx_split_path(tmp_path, "en", "train") == tmp_path / "en" / "translated_train.tsv"
    assert pawsx_split_path(tmp_path, "ja", "train") == tmp_path / "ja" / "train.tsv"
    assert pawsx_split_path(tmp_path, "ko", "train") == tmp_path / "ko" / "translated_train.tsv.gz"
    assert pawsx_split_path(tmp_path, "es", "test") == tmp_path / "es" / "test_2k.tsv.gz"


@pytest.mark.parametrize(("lang", "split"), [("it", "dev"), ("en", "dev_1k"), ("EN", "dev")])
def test_split_paths_reject_unknown_names(tmp_path, lang, split):
    with pytest.raises(ValueError):
        pawsx_split_path(tmp_path, lang, split)


def test_missing_split_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_pawsx_tsv(pawsx_split_path(tmp_path, "de", "dev"))


# ------------------------------------------------------------------------- release download


def _release_files() -> dict[str, bytes]:
    files = {}
    for lang in PAWSX_LANGS:
        train = "train.tsv" if lang == "en" else "translated_train.tsv"
        for name in (train, "dev_2k.tsv", "test_2k.tsv"):
            files[f"x-final/{lang}/{name}"] = _tsv(f"1\t{lang} {name} a\tb\t1").encode()
    return files


def _make_tar(path: Path, files: dict[str, bytes], extra: Sequence[tarfile.TarInfo] = ()) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = 1 if kind == tarfile.REGTYPE else 0
    return info


def test_download_unpacks_release_from_a_file_url(tmp_path):
    archive = _make_tar(tmp_path / "x-final.tar.gz", _release_files())
    dest = tmp_path / "data"
    root = download_pawsx_release(dest, url=archive.as_uri())
    assert root == dest / "x-final"
    assert [p.name for p in dest.iterdir()] == ["x-final"]  # no temporary left behind
    dev = read_pawsx_tsv(pawsx_split_path(root, "ko", "dev"))
    assert dev.examples == [PairExample("1", "ko dev_2k.tsv a", "b", 1)]
    assert pawsx_split_path(root, "en", "train").name == "train.tsv"
    assert pawsx_split_path(root, "de", "train").name == "translated_train.tsv"


def test_download_checks_sha256(tmp_path):
    archive = _make_tar(tmp_path / "x-final.tar.gz", _release_files())
    good = hashlib.sha256(archive.read_bytes()).hexdigest()
    with pytest.raises(DataFormatError, match="sha256"):
        download_pawsx_release(tmp_path / "bad", url=archive.as_uri(), sha256="0" * 64)
    assert list((tmp_path / "bad").iterdir()) == []
    root = download_pawsx_release(tmp_path / "good", url=archive.as_uri(), sha256=good.upper())
    assert (root / "zh" / "test_2k.tsv").is_file()


def test_existing_complete_release_is_not_downloaded_again(tmp_path):
    archive = _make_tar(tmp_path / "x-final.tar.gz", _release_files())
    root = download_pawsx_release(tmp_path / "d", url=archive.as_uri())
    missing_url = (tmp_path / "gone.tar.gz").as_uri()
    assert download_pawsx_release(tmp_path / "d", url=missing_url) == root


def test_existing_incomplete_release_is_an_error(write_file, tmp_path):
    write_file("d/x-final/en/dev_2k.tsv", HEADER)
    with pytest.raises(FileExistsError, match="incomplete"):
        download_pawsx_release(tmp_path / "d", url=(tmp_path / "gone").as_uri())


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ([_member("x-final/../evil.txt")], "unsafe path"),
        ([_member("/etc/evil.txt")], "unsafe path"),
        ([_member("x-final/en/link", tarfile.SYMTYPE, "/etc/passwd")], "not a regular file"),
        ([_member("x-final/en/hard", tarfile.LNKTYPE, "x-final/en/dev_2k.tsv")], "not a regular"),
        ([_member("other/readme.txt")], "outside x-final/"),
    ],
)
def test_unsafe_or_foreign_members_are_refused_before_extracting(tmp_path, extra, problem):
    archive = _make_tar(tmp_path / "x.tar.gz", _release_files(), extra)
    with pytest.raises(DataFormatError, match=problem):
        download_pawsx_release(tmp_path / "d", url=archive.as_uri())
    assert list((tmp_path / "d").iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_archive_missing_a_language_is_refused(tmp_path):
    files = {k: v for k, v in _release_files().items() if not k.startswith("x-final/ja/")}
    archive = _make_tar(tmp_path / "x.tar.gz", files)
    with pytest.raises(DataFormatError, match=r"x-final/ja/dev_2k\.tsv"):
        verify_pawsx_archive(archive)


def test_non_tar_download_is_refused(write_file, tmp_path):
    page = write_file("page.html", "<html>quota exceeded</html>")
    with pytest.raises(DataFormatError, match="not a readable tar archive") as info:
        download_pawsx_release(tmp_path / "d", url=page.as_uri())
    assert info.value.path == page.as_uri()
    assert not (tmp_path / "d" / "x-final").exists()


# ----------------------------------------------------------------------------- hub loader


class _FakeDatasets(types.ModuleType):
    def __init__(self, rows):
        super().__init__("datasets")
        self.rows = rows
        self.calls = []

    def load_dataset(self, name, config, **kwargs):
        self.calls.append((name, config, kwargs))
        return list(self.rows)


def test_hub_loader_maps_rows_and_undoes_quotes(monkeypatch):
    fake = _FakeDatasets(
        [
            {
                "id": 68,
                "sentence1": '"""Angel Eyes"" ist ein Lied."',
                "sentence2": "NS",
                "label": 0,
            },
            {"id": 69, "sentence1": "A", "sentence2": "B", "label": 1},
        ]
    )
    monkeypatch.setitem(sys.modules, "datasets", fake)
    result = load_pawsx_from_hf("de", "dev")
    assert fake.calls == [(PAWSX_HF_DATASET, "de", {"split": "validation"})]
    assert result.examples == [
        PairExample("68", '"Angel Eyes" ist ein Lied.', "NS", 0),
        PairExample("69", "A", "B", 1),
    ]
    assert (result.ns_count, result.ns_pairs) == (1, 1)
    assert result.path == f"hf:{PAWSX_HF_DATASET}/de/validation"


def test_hub_loader_split_names_and_cache_dir(monkeypatch, tmp_path):
    fake = _FakeDatasets([])
    monkeypatch.setitem(sys.modules, "datasets", fake)
    load_pawsx_from_hf("en", "train")
    load_pawsx_from_hf("zh", "test", cache_dir=tmp_path)
    assert fake.calls == [
        (PAWSX_HF_DATASET, "en", {"split": "train"}),
        (PAWSX_HF_DATASET, "zh", {"split": "test", "cache_dir": str(tmp_path)}),
    ]


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ([{"id": 1, "sentence1": "A", "sentence2": "B", "label": -1}], "row 0: label"),
        ([{"id": 1, "sentence1": "A", "sentence2": "B", "label": True}], "row 0: label"),
        (
            [
                {"id": 1, "sentence1": "A", "sentence2": "B", "label": 1},
                {"id": 1, "sentence1": "C", "sentence2": "D", "label": 0},
            ],
            "row 1: duplicate id '1'",
        ),
    ],
)
def test_hub_loader_rejects_bad_rows(monkeypatch, rows, problem):
    monkeypatch.setitem(sys.modules, "datasets", _FakeDatasets(rows))
    with pytest.raises(DataFormatError, match=problem):
        load_pawsx_from_hf("fr", "dev")


def test_hub_loader_without_datasets_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ImportError, match=r"xstilts\[hub\]"):
        load_pawsx_from_hf("en", "dev")


def test_hub_loader_checks_names_before_importing(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ValueError, match="language"):
        load_pawsx_from_hf("it", "dev")


# ------------------------------------------------------------------------------- real data

# NS sentences (a pair can hold two) in the shared x-final copies; 0 for English
REAL_NS_COUNTS = {
    ("de", "dev"): 80, ("de", "test"): 38, ("es", "dev"): 39, ("es", "test"): 1,
    ("fr", "dev"): 9, ("fr", "test"): 15, ("ja", "dev"): 21, ("ja", "test"): 55,
    ("ko", "dev"): 41, ("ko", "test"): 28, ("zh", "dev"): 17, ("zh", "test"): 28,
    ("en", "dev"): 0, ("en", "test"): 0,
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.ci
def test_real_pawsx_files(shared_data):
    root = shared_data / "pawsx"
    for (lang, split), ns in REAL_NS_COUNTS.items():
        result = read_pawsx_tsv(pawsx_split_path(root, lang, split))
        assert len(result.examples) == 2000, (lang, split)
        assert result.ns_count == ns, (lang, split)
        assert result.empty_count == 0
        # the dataset's rule: a pair with an NS side is labelled 0
        ns_labels = {e.label for e in result.examples if "NS" in (e.text_a, e.text_b)}
        assert ns_labels <= {0}
        assert not any(e.text_a.startswith('"""') for e in result.examples)


@pytest.mark.slow
@pytest.mark.ci
def test_real_quoted_field_is_unquoted(shared_data):
    examples = read_pawsx_tsv(shared_data / "pawsx" / "de" / "test_2k.tsv").examples
    angel = next(e for e in examples if e.id == "68")
    assert angel.text_a.startswith('"Angel Eyes" ist ein beliebter Song')
    assert angel.text_a.endswith("Earl Brent.")


@pytest.mark.slow
@pytest.mark.ci
def test_real_paws_wiki_test(shared_data):
    path = shared_data / "paws-wiki" / "test.tsv"
    assert path.read_bytes()[:40].count(b"\r\n") == 1  # CRLF as released
    result = read_pawsx_tsv(path)
    assert len(result.examples) == 8000
    assert result.ns_count == 0
    assert {e.label for e in result.examples} == {0, 1}
