"""Every task whose data is in shared/data, read for real: examples per split, the fixed UD
supertag label set rebuilt from EWT train, and the dev words it cannot credit."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import pytest

from xstilts.data.conllu import read_conllu
from xstilts.data.supertags import ud_supertag_sentence
from xstilts.tasks.registry import get_task
from xstilts.tasks.ud_supertag import UD_SUPERTAGS, UNK_TAG, tag_label_set

# task: (train examples, dev examples) on shared/data
COUNTS = {
    "ud_supertag": (12544, 2001),
    "cola": (8551, 527),
    "ud_upos_gum": (10224, 1575),
    "ptb_chunking": (8936, 2012),
    "anli": (2558, 640),
    "cosmosqa": (2378, 607),
    "mnli_dev_matched": (7850, 1965),
    "qqp": (18844, 4652),
    "mrpc": (4076, 1725),
    "sst2": (67349, 872),
    "dream": (6116, 2040),
    "snli": (15815, 3851),
}
# pooled files split by hashed id: how many examples the file holds in all
HOLDOUT_TOTALS = {
    "anli": 3198,
    "cosmosqa": 2985,
    "mnli_dev_matched": 9815,
    "qqp": 23496,
    "snli": 19666,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(COUNTS))
def test_real_counts(shared_data: Path, name: str) -> None:
    task = get_task(name)
    for path in task.files(shared_data).values():
        assert path.is_file(), path
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*skipped 1 malformed qqp row")  # GLUE's broken row
        train = task.examples(shared_data, "train")
        dev = task.examples(shared_data, "dev")
    assert (len(train), len(dev)) == COUNTS[name]
    assert not {ex.id for ex in train} & {ex.id for ex in dev}
    if name in HOLDOUT_TOTALS:
        assert len(train) + len(dev) == HOLDOUT_TOTALS[name]
        assert 0.18 < len(dev) / HOLDOUT_TOTALS[name] < 0.22


@pytest.mark.slow
@pytest.mark.ci
def test_real_cola_labels(shared_data: Path) -> None:
    task = get_task("cola")
    train = task.examples(shared_data, "train")
    dev = task.examples(shared_data, "dev")
    assert (len(train), len(dev)) == (8551, 527)
    assert Counter(ex.label for ex in dev) == {1: 365, 0: 162}
    assert all(ex.text_b is None for ex in train)


@pytest.mark.slow
@pytest.mark.ci
def test_real_ud_supertag_label_set_is_ewt_train(shared_data: Path) -> None:
    """UD_SUPERTAGS is exactly the sorted tag set of EWT train; 3 dev words are gold <unk>."""
    task = get_task("ud_supertag")
    path = shared_data / "ud-english-ewt" / "en_ewt-ud-train.conllu"
    rebuilt = tag_label_set(ud_supertag_sentence(s) for s in read_conllu(path))
    assert rebuilt == (*UD_SUPERTAGS, UNK_TAG) == task.spec.labels
    dev = task.examples(shared_data, "dev")
    raw = [ud_supertag_sentence(s) for s in read_conllu(path.with_name("en_ewt-ud-dev.conllu"))]
    unk = Counter(
        raw_tag
        for ex, sentence in zip(dev, raw, strict=True)
        for tag, raw_tag in zip(ex.tags, sentence.tags, strict=True)
        if tag == UNK_TAG
    )
    assert unk == {"dep<6+": 2, "iobj>3-5": 1}
    assert sum(len(ex.words) for ex in dev) == 25147
