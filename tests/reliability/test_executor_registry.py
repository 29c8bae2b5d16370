"""The executor registry: built-ins by name, did-you-mean for typos, custom executors."""

from __future__ import annotations

import pytest

from xstilts.executors import (
    UnknownExecutorError,
    get_executor,
    known_executors,
    register_executor,
)
from xstilts.executors.local import execute_plan


def test_local_is_builtin_and_default() -> None:
    assert get_executor("local") is execute_plan
    assert {"local", "ray", "slurm"} <= set(known_executors())


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(UnknownExecutorError, match=r"did you mean 'slurm'\?"):
        get_executor("slrum")
    with pytest.raises(UnknownExecutorError, match=r"expected one of \[.*'local'"):
        get_executor("kubernetes")


def test_register_custom_executor() -> None:
    @register_executor("test-noop")
    def noop(plan, store, console=None, **options):  # type: ignore[no-untyped-def]
        return options

    assert get_executor("test-noop") is noop
    with pytest.raises(ValueError, match="already registered"):
        register_executor("test-noop")(lambda *a, **k: None)


def test_slurm_arrays_follow_dependency_levels() -> None:
    from xstilts.executors.slurm_executor import slurm_parameters
    from xstilts.study import Resources

    res = Resources(gpus=1, cpus=8, memory_gb=32, time_minutes=120)
    params = slurm_parameters(
        res, 1, 8, name="x", partition="gpu", after=["12", "11", "12"], extra={"account": "a"}
    )
    assert params["gpus_per_node"] == 1 and params["cpus_per_task"] == 8
    assert params["mem_gb"] == 32 and params["timeout_min"] == 120
    assert params["slurm_partition"] == "gpu"
    assert params["slurm_additional_parameters"] == {"account": "a", "dependency": "afterany:11:12"}


def test_missing_package_is_a_clear_error() -> None:
    from xstilts.executors import ExecutorUnavailableError, require

    with pytest.raises(ExecutorUnavailableError, match="needs the 'no_such_pkg' package"):
        require("no_such_pkg", "ray")
