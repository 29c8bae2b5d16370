"""scripts/design_power.py: simulated studies analysed as the report does, counted."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def m(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script("design_power.py")


def test_a_large_planted_slope_is_found_and_none_is_not_invented(m: ModuleType) -> None:
    table = m.simulate_power(
        (1e7, 1e8, 1e9), [0.0, 0.05], sims=3, n_test=300, n_dev=100, n_boot=100,
        seed_sd=0.003, task_sd=0.002, gap=0.08,
    )  # fmt: skip
    zero, big = table.to_dict("records")
    assert big["planted slope (pp/decade)"] == pytest.approx(5.0)
    assert big["slope CI excludes 0"] == 1.0 and big["amplifies"] == 1.0
    assert big["median slope (pp/decade)"] == pytest.approx(5, abs=1.5)
    assert zero["slope CI excludes 0"] <= 1 / 3  # at most one false call in three
    assert abs(zero["median slope (pp/decade)"]) < 1.5
    # a shorter span measures the slope less precisely
    narrow = m.simulate_power(
        (1e7, 2e7), [0.0], sims=3, n_test=300, n_dev=100, n_boot=100, seed_sd=0.003,
        task_sd=0.002, gap=0.08,
    )  # fmt: skip
    assert (
        narrow.loc[0, "median CI half-width (pp/decade)"]
        > 2 * zero["median CI half-width (pp/decade)"]
    )


def test_cli_prints_the_design_and_the_table(m: ModuleType, capsys) -> None:
    assert m.main(["--sizes", "1e7", "1e8", "--effects", "0", "--sims", "1", "--n-test", "100",
                   "--n-boot", "50"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "2 rungs over 1.00 decades" in out and "planted slope (pp/decade)" in out
    with pytest.raises(SystemExit):
        m.main(["--sizes", "1e7"])


def test_a_task_by_size_interaction_needs_the_tasks_resampled_ci(m: ModuleType) -> None:
    """Tasks that help more at some sizes than others (2 pp here) move the gap of these tasks
    without a trend of syntactic vs semantic tasks in general: the verdict's CI (conditional
    on the tasks chosen) then finds slopes that are these tasks' own; the CI that resamples the
    tasks, which speaks for tasks like them, does not."""
    row = m.simulate_power(
        (1e7, 1e8, 1e9), [0.0], sims=6, n_test=300, n_dev=100, n_boot=100, seed_sd=0.002,
        task_sd=0.002, task_rung_sd=0.02, gap=0.08,
    ).iloc[0]  # fmt: skip
    assert row["slope CI excludes 0"] >= 2 / 6
    assert row["tasks resampled: CI excludes 0"] == 0.0 and row["tasks resampled: covers"] == 1.0
    assert row["tasks resampled: median half-width"] > 2 * row["median CI half-width (pp/decade)"]
