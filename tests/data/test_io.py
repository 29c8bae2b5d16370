"""Tests for xstilts.data.io: gzip, strict UTF-8 with line numbers, line ends, hashing.
Synthetic files only; every reader relies on these behaviours."""

from __future__ import annotations

import hashlib

import pytest

from xstilts.data.errors import DataFormatError
from xstilts.data.io import iter_lines, open_text, strip_line_end
from xstilts.hashing import sha256_file


def test_iter_lines_numbers_lines_and_strips_each_kind_of_ending(write_file):
    path = write_file("a.txt", "one\r\ntwo\nthree\r\n\nfour\rfive\nsix\r")
    assert list(iter_lines(path)) == [
        (1, "one"),
        (2, "two"),
        (3, "three"),
        (4, ""),
        (5, "four\rfive"),  # a lone CR inside a line is data, not a line break
        (6, "six"),
    ]


def test_iter_lines_last_line_without_ending(write_file):
    assert list(iter_lines(write_file("a.txt", "x\ny"))) == [(1, "x"), (2, "y")]


def test_iter_lines_does_not_split_on_unicode_line_separators(write_file):
    path = write_file("a.txt", "a\u2028b\x85c\n")
    assert list(iter_lines(path)) == [(1, "a\u2028b\x85c")]


def test_gz_is_opened_transparently(write_file):
    path = write_file("a.txt.gz", "é\r\nß\n")
    assert list(iter_lines(path)) == [(1, "é"), (2, "ß")]


def test_bom_on_first_line_is_dropped(write_file):
    path = write_file("a.txt", "\ufeffid\tx\n\ufeffkept\n")
    assert list(iter_lines(path)) == [(1, "id\tx"), (2, "\ufeffkept")]


@pytest.mark.parametrize("name", ["bad.txt", "bad.txt.gz"])
def test_undecodable_bytes_name_file_and_line(write_file, name):
    path = write_file(name, b"ok\nstill ok\nbad \xff byte\nnever read\n")
    with pytest.raises(DataFormatError) as info:
        list(iter_lines(path))
    assert info.value.line == 3
    assert info.value.path == str(path)
    assert "UTF-8" in info.value.problem
    assert f"{path}:3" in str(info.value)


def test_truncated_multibyte_character_is_an_error(write_file):
    path = write_file("bad.txt", b"fine\n" + "é".encode()[:1] + b"\n")
    with pytest.raises(DataFormatError) as info:
        list(iter_lines(path))
    assert info.value.line == 2


def test_open_text_read_iterate_and_close(write_file):
    path = write_file("a.txt.gz", "a\r\nb\n")
    with open_text(path) as handle:
        assert handle.readline() == "a\r\n"
        assert handle.lineno == 1
        assert handle.read() == "b\n"
        assert handle.readline() == ""
    assert handle.closed
    with open_text(path) as handle:
        assert list(handle) == ["a\r\n", "b\n"]


def test_open_text_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        open_text(tmp_path / "nope.tsv")


def test_strip_line_end():
    assert strip_line_end("a\r\n") == "a"
    assert strip_line_end("a\n") == "a"
    assert strip_line_end("a\r") == "a"
    assert strip_line_end("a") == "a"
    assert strip_line_end("a\n\n") == "a\n"


def test_sha256_file_matches_hashlib_over_several_chunks(write_file):
    data = bytes(range(256)) * 9000  # > 2 MiB, more than one read chunk
    path = write_file("blob.bin", data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_sha256_file_hashes_gz_as_stored(write_file):
    path = write_file("a.txt.gz", "abc\n")
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sha256_file(path) != hashlib.sha256(b"abc\n").hexdigest()
