"""Tests for xstilts.data.conllu: sentences, multiword tokens, empty nodes, errors with lines.
Synthetic CoNLL-U (plain and gzipped), plus slow sentence counts of the shared treebanks."""

from __future__ import annotations

import pytest

from xstilts.data.conllu import ConlluToken, read_conllu, to_tagged
from xstilts.data.errors import DataFormatError
from xstilts.data.records import TaggedSentence


def _row(*cols: object) -> str:
    return "\t".join(str(c) for c in cols)


def _word(i: int, form: str, upos: str, head: int, deprel: str, misc: str = "_") -> str:
    return _row(i, form, form.lower(), upos, upos[:2], "_", head, deprel, "_", misc)


# sentence 1 (lines 1-11): comments, a multiword token `3-4` and an empty node `4.1`
SENT_1 = [
    "# newdoc id = doc1",
    "# sent_id = s-1",
    "# text = I don't know.",
    _word(1, "I", "PRON", 4, "nsubj"),
    _row("2-3", "don't", *["_"] * 8),
    _word(2, "do", "AUX", 4, "aux"),
    _word(3, "n't", "PART", 4, "advmod"),
    _word(4, "know", "VERB", 0, "root"),
    _row("4.1", "knows", "know", "VERB", "VBZ", "_", "_", "_", "4:conj", "CopyOf=4"),
    _word(5, ".", "PUNCT", 4, "punct", "SpaceAfter=No"),
    "",
]
SENT_2 = ["# sent_id = s-2", "# text = Go!", _word(1, "Go", "VERB", 0, "root"), ""]


def _conllu(*sentences: list[str]) -> str:
    return "".join(f"{line}\n" for sentence in sentences for line in sentence)


def test_reads_words_skipping_multiword_tokens_and_empty_nodes(write_file):
    first, second = read_conllu(write_file("a.conllu", _conllu(SENT_1, SENT_2)))
    assert first.sent_id == "s-1"
    assert first.text == "I don't know."
    assert first.line == 1
    assert first.words == ("I", "do", "n't", "know", ".")
    assert [t.id for t in first.tokens] == [1, 2, 3, 4, 5]
    assert [t.head for t in first.tokens] == [4, 4, 4, 0, 4]
    assert [t.deprel for t in first.tokens] == ["nsubj", "aux", "advmod", "root", "punct"]
    assert [t.upos for t in first.tokens] == ["PRON", "AUX", "PART", "VERB", "PUNCT"]
    assert first.tokens[0] == ConlluToken(1, "I", "i", "PRON", "PR", "_", 4, "nsubj", "_", "_")
    assert first.tokens[4].misc == "SpaceAfter=No"
    assert (second.sent_id, second.text, second.words, second.line) == ("s-2", "Go!", ("Go",), 12)


def test_gz_and_crlf(write_file):
    text = _conllu(SENT_1, SENT_2).replace("\n", "\r\n")
    sentences = read_conllu(write_file("en_gum-ud-dev.conllu.gz", text))
    assert [s.sent_id for s in sentences] == ["s-1", "s-2"]
    assert sentences[0].tokens[4].misc == "SpaceAfter=No"


def test_missing_final_blank_line_and_repeated_blank_lines(write_file):
    text = "\n\n" + _conllu(SENT_1) + "\n\n" + _conllu(SENT_2).rstrip("\n")
    assert [s.sent_id for s in read_conllu(write_file("a.conllu", text))] == ["s-1", "s-2"]


def test_sentence_without_comments_gets_its_position_as_id(write_file):
    bare = [_word(1, "Go", "VERB", 0, "root"), ""]
    sentences = read_conllu(write_file("a.conllu", _conllu(SENT_2, bare)))
    assert (sentences[1].sent_id, sentences[1].text) == ("2", None)


def test_comment_variants(write_file):
    sent = ["#sent_id=x1", "# text = a  b ", "# other = 1", _word(1, "a", "X", 0, "root"), ""]
    (sentence,) = read_conllu(write_file("a.conllu", _conllu(sent)))
    assert (sentence.sent_id, sentence.text) == ("x1", "a  b ")


def test_form_with_space_and_underscore_form(write_file):
    sent = [_word(1, "New York", "PROPN", 0, "root"), _word(2, "_", "SYM", 1, "dep"), ""]
    (sentence,) = read_conllu(write_file("a.conllu", _conllu(sent)))
    assert sentence.words == ("New York", "_")


def test_empty_node_after_the_last_word_and_at_zero(write_file):
    empty0 = _row("0.1", "e", "_", "_", "_", "_", "_", "_", "_", "_")
    empty1 = _row("1.1", "e", "_", "_", "_", "_", "_", "_", "_", "_")
    sent = ["# sent_id = e", empty0, _word(1, "Go", "VERB", 0, "root"), empty1, ""]
    (sentence,) = read_conllu(write_file("a.conllu", _conllu(sent)))
    assert sentence.words == ("Go",)


def test_empty_file_gives_no_sentences(write_file):
    assert read_conllu(write_file("a.conllu", "\n\n")) == []


def _replace(lines: list[str], index: int, new: str) -> list[str]:
    return [*lines[:index], new, *lines[index + 1 :]]


@pytest.mark.parametrize(
    ("sentence", "line", "problem"),
    [
        (
            _replace(SENT_1, 5, "2\tdo\tdo\tAUX\tVBP\t_\t4\taux\t_"),
            6,
            "expected 10 tab-separated columns, found 9",
        ),
        (
            _replace(SENT_1, 5, "2 do do AUX VBP _ 4 aux _ _"),
            6,
            "expected 10 tab-separated columns, found 1",
        ),
        (_replace(SENT_1, 6, _word(3, "n't", "PART", "x", "advmod")), 7, "HEAD must be an integer"),
        (_replace(SENT_1, 6, _word(3, "n't", "PART", "_", "advmod")), 7, "HEAD must be an integer"),
        (_replace(SENT_1, 6, _word(3, "n't", "PART", -1, "advmod")), 7, "HEAD must be an integer"),
        (_replace(SENT_1, 6, _word(3, "n't", "PART", 9, "advmod")), 7, "HEAD 9 points past"),
        (_replace(SENT_1, 6, _word(3, "n't", "PART", 3, "advmod")), 7, "its own head"),
        (_replace(SENT_1, 6, _word(3, "n't", "PART", 4, "_")), 7, "missing DEPREL"),
        (_replace(SENT_1, 6, _word(4, "n't", "PART", 4, "advmod")), 7, "out of sequence"),
        (_replace(SENT_1, 6, _word(0, "n't", "PART", 4, "advmod")), 7, "bad token id '0'"),
        (_replace(SENT_1, 6, _row("x", "n't", *["_"] * 8)), 7, "bad token id 'x'"),
        (_replace(SENT_1, 6, _row("03", "n't", *["_"] * 8)), 7, "bad token id '03'"),
        (_replace(SENT_1, 6, _row("", "n't", *["_"] * 8)), 7, "bad token id ''"),
        (
            _replace(SENT_1, 6, _row(3, "", "n", "PART", "RB", "_", 4, "advmod", "_", "_")),
            7,
            "empty FORM",
        ),
        (_replace(SENT_1, 4, _row("3-2", "don't", *["_"] * 8)), 5, "multiword token range 3-2"),
        (_replace(SENT_1, 4, _row("2-2", "don't", *["_"] * 8)), 5, "multiword token range 2-2"),
        (_replace(SENT_1, 4, _row("3-4", "don't", *["_"] * 8)), 5, "multiword token range 3-4"),
        (_replace(SENT_1, 8, _row("3.1", "e", *["_"] * 8)), 9, "empty node 3.1 must follow word 3"),
        (_replace(SENT_1, 8, _row("4.0", "e", *["_"] * 8)), 9, "bad token id '4.0'"),
        (_replace(SENT_1, 8, "# late comment"), 9, "comment line after the sentence's tokens"),
        (_replace(SENT_1, 2, "# sent_id = s-1b"), 3, "second `# sent_id`"),
        (_replace(SENT_1, 1, "# sent_id =  "), 2, "empty `# sent_id`"),
        (_replace(SENT_1, 7, _word(4, "know", "VERB", 1, "ccomp")), 1, "no root"),
        (["# sent_id = only-comments", "# text = nothing", ""], 1, "without any word lines"),
    ],
)
def test_malformed_sentences(write_file, sentence, line, problem):
    path = write_file("bad.conllu", _conllu(SENT_2, sentence))
    with pytest.raises(DataFormatError) as info:
        read_conllu(path)
    assert info.value.path == str(path)
    assert info.value.line == line + len(SENT_2)
    assert problem in info.value.problem


def test_duplicate_sent_id(write_file):
    path = write_file("bad.conllu", _conllu(SENT_2, SENT_1, SENT_2))
    with pytest.raises(DataFormatError) as info:
        read_conllu(path)
    assert info.value.line == len(SENT_2) + len(SENT_1) + 1
    assert info.value.problem == "duplicate sent_id 's-2' (first at line 1)"


def test_undecodable_bytes_in_gz(write_file):
    data = _conllu(SENT_2).encode() + b"# text = caf\xe9\n"
    with pytest.raises(DataFormatError) as info:
        read_conllu(write_file("bad.conllu.gz", data))
    assert info.value.line == 5


def test_to_tagged_with_upos_and_head_direction(write_file):
    (sentence,) = read_conllu(write_file("a.conllu", _conllu(SENT_1)))
    assert to_tagged(sentence, lambda t: t.upos) == TaggedSentence(
        "s-1", ("I", "do", "n't", "know", "."), ("PRON", "AUX", "PART", "VERB", "PUNCT")
    )

    def direction(token: ConlluToken) -> str:
        return "ROOT" if token.head == 0 else ("R" if token.head > token.id else "L")

    assert to_tagged(sentence, direction).tags == ("R", "R", "R", "ROOT", "L")


# ------------------------------------------------------------------------------- real data


@pytest.mark.slow
@pytest.mark.ci
def test_real_ewt_sentence_counts(shared_data):
    folder = shared_data / "ud-english-ewt"
    counts = {
        split: len(read_conllu(folder / f"en_ewt-ud-{split}.conllu"))
        for split in ("train", "dev", "test")
    }
    assert counts == {"train": 12544, "dev": 2001, "test": 2077}


@pytest.mark.slow
@pytest.mark.ci
def test_real_ewt_dev_multiword_and_empty_nodes(shared_data):
    sentences = read_conllu(shared_data / "ud-english-ewt" / "en_ewt-ud-dev.conllu")
    assert all(s.text for s in sentences)
    assert all([t.id for t in s.tokens] == list(range(1, len(s.tokens) + 1)) for s in sentences)
    assert sum(len(s.tokens) for s in sentences) == 25147
    forms = {t.form for s in sentences for t in s.tokens}
    assert "n't" in forms


@pytest.mark.slow
@pytest.mark.ci
def test_real_gum_gz(shared_data):
    sentences = read_conllu(shared_data / "ud-english-gum" / "en_gum-ud-dev.conllu.gz")
    assert len(sentences) == 1575
