"""Hub ids and the lazy `datasets` loader, tested with a fake `datasets` module."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from xstilts.data.hub import HF_DATASET_IDS, HubDataset, hub_dataset, load_hub_dataset


def test_every_task_family_has_an_id() -> None:
    assert HF_DATASET_IDS["cola"] == HubDataset("nyu-mll/glue", "cola")
    assert HF_DATASET_IDS["mnli"] == HubDataset("nyu-mll/glue", "mnli")
    assert HF_DATASET_IDS["anli"] == HubDataset("facebook/anli", None)
    assert HF_DATASET_IDS["pawsx_ko"] == HubDataset("google-research-datasets/paws-x", "ko")
    assert HF_DATASET_IDS["ud_en_ewt"].name == "en_ewt"
    expected = {"cosmosqa", "hellaswag", "commonsenseqa", "squad", "squad_v2", "dream", "xnli_de"}
    assert expected <= set(HF_DATASET_IDS)
    assert {f"pawsx_{lang}" for lang in ("en", "de", "es", "fr", "ja", "ko", "zh")} <= set(
        HF_DATASET_IDS
    )


def test_unknown_task_suggests_close_names() -> None:
    with pytest.raises(KeyError, match="did you mean pawsx_ja"):
        hub_dataset("pawx_ja")


def test_load_calls_datasets_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []
    fake = types.ModuleType("datasets")

    def load_dataset(path: str, name: str | None, split: str, **kwargs: Any) -> str:
        calls.append((path, name, split, kwargs))
        return "a dataset"

    fake.load_dataset = load_dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", fake)
    assert load_hub_dataset("qnli", "validation", cache_dir="/tmp/c") == "a dataset"
    assert load_hub_dataset("squad_v2", "train") == "a dataset"
    assert calls == [
        ("nyu-mll/glue", "qnli", "validation", {"cache_dir": "/tmp/c"}),
        ("rajpurkar/squad_v2", None, "train", {}),
    ]


def test_missing_datasets_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(ImportError, match=r"xstilts\[hub\]"):
        load_hub_dataset("cola", "train")
