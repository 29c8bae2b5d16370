"""Executors: how a plan's stages get run. Every executor writes to the same store with the same
stage keys, so a study can be started on a laptop, continued on Ray, finished on Slurm.

An executor is a function `(plan, store, console, **options) -> ExecutionReport`, registered
under a name with `@register_executor(name)`; `get_executor(name)` returns it (importing the
built-in ones on first use, so Ray and submitit are only needed by the executors that use them).
`local` (this process, the default), `ray` (a Ray cluster) and `slurm` (submitit job arrays)."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any

Executor = Callable[..., Any]
"""(plan, store, console, **options) -> ExecutionReport"""

_EXECUTORS: dict[str, Executor] = {}
_BUILTIN_MODULES = {
    "local": "xstilts.executors.local",
    "ray": "xstilts.executors.ray_executor",
    "slurm": "xstilts.executors.slurm_executor",
}
DEFAULT_EXECUTOR = "local"


class UnknownExecutorError(ValueError):
    """No executor of that name: the message lists the known ones and the closest match."""


class ExecutorUnavailableError(RuntimeError):
    """The executor needs a package that is not installed: the message says which."""


def require(module: str, executor: str) -> Any:
    """Import `module` for `executor`, or raise ExecutorUnavailableError saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExecutorUnavailableError(
            f"the {executor} executor needs the {module!r} package: pip install {module} "
            "(or xstilts' 'cluster' extra)"
        ) from None


def register_executor(name: str) -> Callable[[Executor], Executor]:
    """Decorator registering an executor function under `name` (names are unique)."""

    def register(fn: Executor) -> Executor:
        existing = _EXECUTORS.get(name)
        if existing is not None and existing is not fn:
            raise ValueError(f"executor {name!r} is already registered")
        _EXECUTORS[name] = fn
        return fn

    return register


def known_executors() -> list[str]:
    return sorted(set(_EXECUTORS) | set(_BUILTIN_MODULES))


def get_executor(name: str) -> Executor:
    """The executor registered as `name`; an unknown name lists the known ones (did you mean?)."""
    if name not in _EXECUTORS and name in _BUILTIN_MODULES:
        importlib.import_module(_BUILTIN_MODULES[name])
    try:
        return _EXECUTORS[name]
    except KeyError:
        known = known_executors()
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownExecutorError(
            f"unknown executor {name!r}; expected one of {known}{hint}"
        ) from None
