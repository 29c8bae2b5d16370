"""CoNLL-U treebanks (Universal Dependencies): sentences of syntactic words with tags and heads.
Multiword-token ranges (`3-4`) and empty nodes (`8.1`) are checked, then left out of the words."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xstilts.data.errors import DataFormatError
from xstilts.data.io import iter_lines
from xstilts.data.records import TaggedSentence

CONLLU_COLUMNS: tuple[str, ...] = (
    "ID",
    "FORM",
    "LEMMA",
    "UPOS",
    "XPOS",
    "FEATS",
    "HEAD",
    "DEPREL",
    "DEPS",
    "MISC",
)
_WORD_ID = re.compile(r"[1-9][0-9]*")
_RANGE_ID = re.compile(r"([1-9][0-9]*)-([1-9][0-9]*)")
_EMPTY_ID = re.compile(r"(0|[1-9][0-9]*)\.([1-9][0-9]*)")
_HEAD = re.compile(r"0|[1-9][0-9]*")
_COMMENT_KEY = re.compile(r"#\s*(sent_id|text)\s*=\s?(.*)")


@dataclass(frozen=True, slots=True)
class ConlluToken:
    """One syntactic word (an integer-id line); `head` is 0 for the root."""

    id: int
    form: str
    lemma: str
    upos: str
    xpos: str
    feats: str
    head: int
    deprel: str
    deps: str
    misc: str


@dataclass(frozen=True, slots=True)
class ConlluSentence:
    """One sentence: `sent_id` from its comment (else its 1-based position in the file, as a
    string), `text` from `# text =` (None if absent), and `line`, where the sentence starts."""

    sent_id: str
    text: str | None
    tokens: tuple[ConlluToken, ...]
    line: int

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(token.form for token in self.tokens)


class _SentenceBuilder:
    """Collects the lines of one sentence and checks it as a whole when it ends."""

    def __init__(self, path: str | Path, start: int) -> None:
        self.path = path
        self.start = start
        self.sent_id: str | None = None
        self.text: str | None = None
        self.tokens: list[ConlluToken] = []
        self.heads_at: list[int] = []  # line of each token, for head errors
        self.has_lines = False

    def comment(self, lineno: int, line: str) -> None:
        if self.tokens:
            raise DataFormatError(self.path, lineno, "comment line after the sentence's tokens")
        self.has_lines = True
        match = _COMMENT_KEY.fullmatch(line)
        if match is None:
            return
        key, value = match.groups()
        if key == "sent_id":
            if self.sent_id is not None:
                raise DataFormatError(self.path, lineno, "second `# sent_id` in one sentence")
            if not value.strip():
                raise DataFormatError(self.path, lineno, "empty `# sent_id`")
            self.sent_id = value.strip()
        elif self.text is None:
            self.text = value

    def token_line(self, lineno: int, line: str) -> None:
        self.has_lines = True
        fields = line.split("\t")
        if len(fields) != len(CONLLU_COLUMNS):
            raise DataFormatError(
                self.path, lineno, f"expected 10 tab-separated columns, found {len(fields)}"
            )
        token_id = fields[0]
        if _WORD_ID.fullmatch(token_id) is None:
            if _RANGE_ID.fullmatch(token_id) or _EMPTY_ID.fullmatch(token_id):
                self._check_non_word(lineno, token_id)
                return
            raise DataFormatError(self.path, lineno, f"bad token id {token_id!r}")
        expected = len(self.tokens) + 1
        if int(token_id) != expected:
            raise DataFormatError(
                self.path, lineno, f"token id {token_id} out of sequence, expected {expected}"
            )
        _, form, lemma, upos, xpos, feats, head, deprel, deps, misc = fields
        if not form:
            raise DataFormatError(self.path, lineno, "empty FORM")
        if not _HEAD.fullmatch(head):
            raise DataFormatError(self.path, lineno, f"HEAD must be an integer, found {head!r}")
        if not deprel or deprel == "_":
            raise DataFormatError(self.path, lineno, f"missing DEPREL, found {deprel!r}")
        self.tokens.append(
            ConlluToken(expected, form, lemma, upos, xpos, feats, int(head), deprel, deps, misc)
        )
        self.heads_at.append(lineno)

    def _check_non_word(self, lineno: int, token_id: str) -> None:
        if match := _RANGE_ID.fullmatch(token_id):
            first, last = int(match.group(1)), int(match.group(2))
            if first >= last or first != len(self.tokens) + 1:
                raise DataFormatError(
                    self.path,
                    lineno,
                    f"multiword token range {token_id} must start at the next word "
                    f"({len(self.tokens) + 1}) and span at least two words",
                )
        elif (match := _EMPTY_ID.fullmatch(token_id)) and int(match.group(1)) != len(self.tokens):
            raise DataFormatError(
                self.path,
                lineno,
                f"empty node {token_id} must follow word {match.group(1)}, "
                f"found after word {len(self.tokens)}",
            )

    def finish(self, position: int) -> ConlluSentence:
        if not self.tokens:
            raise DataFormatError(self.path, self.start, "sentence without any word lines")
        n_words = len(self.tokens)
        roots = 0
        for token, lineno in zip(self.tokens, self.heads_at, strict=True):
            if token.head > n_words:
                raise DataFormatError(
                    self.path,
                    lineno,
                    f"HEAD {token.head} points past the sentence's {n_words} words",
                )
            if token.head == token.id:
                raise DataFormatError(self.path, lineno, f"word {token.id} is its own head")
            roots += token.head == 0
        if roots == 0:
            raise DataFormatError(self.path, self.start, "sentence has no root (HEAD 0)")
        sent_id = self.sent_id if self.sent_id is not None else str(position)
        return ConlluSentence(sent_id, self.text, tuple(self.tokens), self.start)


def read_conllu(path: str | Path) -> list[ConlluSentence]:
    """Read a CoNLL-U file (`.gz` allowed) into sentences of integer-id words.

    Blank lines end sentences (repeated blank lines and a missing final one are accepted).
    Each word line must have 10 columns, ids must run 1..n, HEAD must be an integer within the
    sentence, ranges and empty nodes must sit where the format puts them, and `# sent_id`
    values must be unique; anything else raises DataFormatError with the file and line."""
    sentences: list[ConlluSentence] = []
    seen_ids: dict[str, int] = {}
    current: _SentenceBuilder | None = None

    def close(builder: _SentenceBuilder) -> None:
        sentence = builder.finish(len(sentences) + 1)
        if (first := seen_ids.get(sentence.sent_id)) is not None:
            raise DataFormatError(
                path,
                sentence.line,
                f"duplicate sent_id {sentence.sent_id!r} (first at line {first})",
            )
        seen_ids[sentence.sent_id] = sentence.line
        sentences.append(sentence)

    for lineno, line in iter_lines(path):
        if not line.strip():
            if current is not None:
                close(current)
                current = None
            continue
        if current is None:
            current = _SentenceBuilder(path, lineno)
        if line.startswith("#"):
            current.comment(lineno, line)
        else:
            current.token_line(lineno, line)
    if current is not None:
        close(current)
    return sentences


def to_tagged(sentence: ConlluSentence, tag_fn: Callable[[ConlluToken], str]) -> TaggedSentence:
    """One TaggedSentence: the sentence's words with `tag_fn(word)` as each word's tag."""
    return TaggedSentence(
        sentence.sent_id,
        sentence.words,
        tuple(tag_fn(token) for token in sentence.tokens),
    )
