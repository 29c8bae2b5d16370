"""Every intermediate task's spec: category, head, label count, metric, hub id from data/hub.py,
a one-line description, and the two-line module docstring each task file carries."""

from __future__ import annotations

import importlib

import pytest

from xstilts.data.hub import HF_DATASET_IDS
from xstilts.tasks.base import ClassificationTask, MultipleChoiceTask, SpanTask, TaggingTask
from xstilts.tasks.registry import _BUILTIN_MODULES, get_task, task_names

# name: (category, head, number of model labels, metric, key in HF_DATASET_IDS or None)
EXPECTED = {
    "ud_supertag": ("syntactic", "tagging", 221, "accuracy", "ud_en_ewt"),
    "cola": ("syntactic", "classification", 2, "matthews", "cola"),
    "ud_upos_gum": ("syntactic", "tagging", 17, "accuracy", "ud_en_gum"),
    "ptb_chunking": ("syntactic", "tagging", 23, "accuracy", None),
    "ccg_supertag": ("syntactic", "tagging", None, "accuracy", None),
    "anli": ("semantic", "classification", 3, "accuracy", "anli"),
    "cosmosqa": ("semantic", "multiple_choice", 4, "accuracy", "cosmosqa"),
    "mnli_dev_matched": ("semantic", "classification", 3, "accuracy", "mnli"),
    "qqp": ("semantic", "classification", 2, "accuracy", "qqp"),
    "mrpc": ("semantic", "classification", 2, "accuracy", "mrpc"),
    "sst2": ("semantic", "classification", 2, "accuracy", "sst2"),
    "dream": ("semantic", "multiple_choice", 3, "accuracy", "dream"),
    "snli": ("semantic", "classification", 3, "accuracy", "snli"),
    "mnli": ("semantic", "classification", 3, "accuracy", "mnli"),
    "squad": ("semantic", "span", 2, "span_exact", "squad"),
    "squad_v2": ("semantic", "span", 2, "span_exact", "squad_v2"),
    "hellaswag": ("semantic", "multiple_choice", 4, "accuracy", "hellaswag"),
    "commonsenseqa": ("semantic", "multiple_choice", 5, "accuracy", "commonsenseqa"),
}
HEAD_BASES = {
    "classification": ClassificationTask,
    "tagging": TaggingTask,
    "multiple_choice": MultipleChoiceTask,
    "span": SpanTask,
}


def test_all_registered_as_builtins() -> None:
    assert set(EXPECTED) <= set(task_names())
    assert set(EXPECTED) <= set(_BUILTIN_MODULES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_spec(name: str) -> None:
    category, head, n_labels, metric, hub_key = EXPECTED[name]
    task = get_task(name)
    spec = task.spec
    assert (spec.name, spec.category, spec.head, spec.metric) == (name, category, head, metric)
    assert isinstance(task, HEAD_BASES[head])
    if n_labels is not None:
        assert task.num_labels == n_labels
        assert len(set(spec.labels)) == len(spec.labels)
    assert spec.description and "\n" not in spec.description and len(spec.description) <= 100
    assert spec.source
    if hub_key is None:
        assert spec.hf_dataset is None
    else:
        hub = HF_DATASET_IDS[hub_key]
        assert spec.hf_dataset is not None and spec.hf_dataset.startswith(hub.path)
        if hub.name is not None:
            assert f"config {hub.name}" in spec.hf_dataset


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_module_docstring_two_lines(name: str) -> None:
    module = importlib.import_module(f"xstilts.tasks.{name}")
    assert module.__doc__ is not None
    assert len(module.__doc__.strip().splitlines()) == 2
