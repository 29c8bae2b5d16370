"""The one task registry: task files register themselves with `@register_task`.
`get_task(name)` answers an unknown name with the list of known ones and a "did you mean"."""

from __future__ import annotations

import difflib
import importlib

from xstilts.tasks.base import Task

_TASKS: dict[str, Task] = {}
_BUILTIN_MODULES = (
    "pawsx",
    "ud_upos",
    "xnli_en",
    # syntactic
    "ud_supertag",
    "cola",
    "ud_upos_gum",
    "ptb_chunking",
    "ccg_supertag",
    # semantic
    "anli",
    "cosmosqa",
    "mnli_dev_matched",
    "qqp",
    "mrpc",
    "sst2",
    "dream",
    "snli",
    "mnli",
    "squad",
    "squad_v2",
    "hellaswag",
    "commonsenseqa",
)
_loaded = False


def register_task(cls: type[Task]) -> type[Task]:
    task = cls()
    name = task.spec.name
    if name in _TASKS:
        raise ValueError(f"task {name!r} registered twice")
    _TASKS[name] = task
    return cls


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(f"xstilts.tasks.{module}")


def task_names() -> list[str]:
    _load_builtins()
    return sorted(_TASKS)


def get_task(name: str) -> Task:
    _load_builtins()
    try:
        return _TASKS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_TASKS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise KeyError(f"unknown task {name!r}{hint}; known tasks: {sorted(_TASKS)}") from None


def all_tasks() -> list[Task]:
    _load_builtins()
    return [_TASKS[n] for n in sorted(_TASKS)]
