"""Pure helpers of scripts/benchmark_training.py (no timing assertions, no models)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest


@pytest.fixture(scope="module")
def bench(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script("benchmark_training.py")


def test_op_category(bench: ModuleType) -> None:
    assert bench.op_category("aten::mm") == "matmul (mm, addmm, bmm)"
    assert bench.op_category("aten::addmm") == "matmul (mm, addmm, bmm)"
    assert bench.op_category("aten::_fused_adamw_") == "AdamW update"
    assert bench.op_category("aten::fill_") == "zero-fill (gradient buffers)"
    assert bench.op_category("aten::bernoulli_") == "dropout RNG (bernoulli_)"
    assert bench.op_category("aten::copy_") == "casts + copies (autocast, contiguous)"
    assert bench.op_category("aten::something_new") == "other"
    # exact names only: no prefix matching ("mm" must not catch "mmm" or "addmm_")
    assert bench.op_category("aten::addmm_") == "other"


def test_categories_are_disjoint(bench: ModuleType) -> None:
    seen: dict[str, str] = {}
    for category, ops in bench.OP_CATEGORIES.items():
        for op in ops:
            assert op not in seen, f"{op} in {seen.get(op)} and {category}"
            seen[op] = category


def test_group_op_times(bench: ModuleType) -> None:
    grouped = bench.group_op_times({"aten::mm": 10.0, "aten::bmm": 5.0, "aten::foo": 1.0})
    assert grouped == {"matmul (mm, addmm, bmm)": 15.0, "other": 1.0}
    assert list(grouped) == ["matmul (mm, addmm, bmm)", "other"]  # largest first


def test_profiled_window(bench: ModuleType) -> None:
    steps = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert bench.profiled_window(steps, 3) == [4.0, 5.0, 6.0]  # steps 4..6 (1-based)
    assert bench.profiled_window(steps, 4) == [4.0, 5.0, 6.0, 7.0]
    with pytest.raises(ValueError):
        bench.profiled_window(steps, 5)


def _profiled_run(variant: str, repeat: int, mm: float, wall: float) -> dict[str, Any]:
    return {
        "variant": variant,
        "repeat": repeat,
        "profile_ms_per_step": {"matmul (mm, addmm, bmm)": mm, "other": 2.0},
        "profile_wall_ms_per_step": wall,
        "profile_top_ops_ms": {"aten::mm": mm},
        "profile_padded_tokens_per_step": 100.0,
    }


def test_summarise_profiles_and_table(bench: ModuleType) -> None:
    runs = [
        _profiled_run("trainer_best", 0, 10.0, 20.0),
        _profiled_run("trainer_best", 1, 30.0, 40.0),
        _profiled_run("trainer_best", 2, 20.0, 30.0),
        _profiled_run("xstilts", 0, 8.0, 12.0),
    ]
    prof = bench.summarise_profiles(runs, ["trainer_default", "trainer_best", "xstilts"])
    assert list(prof) == ["trainer_best", "xstilts"]  # variants without runs are left out
    best = prof["trainer_best"]
    assert best["categories_ms"]["matmul (mm, addmm, bmm)"] == 20.0  # median of 10, 30, 20
    assert best["aten_ops_ms"] == 22.0
    assert best["wall_ms"] == 30.0
    assert best["outside_ops_ms"] == 8.0
    assert best["repeats"] == 3
    table = bench.profile_table(prof).splitlines()
    assert table[0] == "| ms per training step | trainer_best | xstilts |"
    assert "| matmul (mm, addmm, bmm) | 20 | 8 |" in table
    assert "| other | 2 | 2 |" in table
    assert "| padded tokens per profiled step | 100 | 100 |" in table
    assert "| **wall time of the profiled steps** | **30** | **12** |" in table
    assert not any(row.startswith("| layer norm") for row in table)  # all zero: row left out


def _speed_run(variant: str, repeat: int, train: float, **extra: Any) -> dict[str, Any]:
    run = {
        "variant": variant,
        "repeat": repeat,
        "steps": 2,
        "train_samples": 64,
        "train_samples_per_s": train,
        "step_s": [1.0, 1.0],
        "eval_samples_per_s": 10.0,
        "peak_rss_mib": 1000.0,
        "accuracy": 0.5,
        "train_cpu_s": 4.0,
        "padded_tokens_per_step": 10.0,
        "real_tokens_per_step": 8.0,
        "final_loss": 0.7,
        "pred_1_rate": 0.5,
        "precision": "bf16",
        "optimizer": "AdamW fused",
        "vocab": 1000,
        "other_cores": 0.1,
    }
    run.update(extra)
    return run


def test_summarise_speedups(bench: ModuleType) -> None:
    runs = [
        _speed_run("trainer_default", 0, 10.0),
        _speed_run("trainer_best", 0, 20.0, step_s=[0.5, 0.5]),
        _speed_run("xstilts", 0, 30.0, step_s=[0.25, 0.5]),
    ]
    summary = bench.summarise(runs, ["trainer_default", "trainer_best", "xstilts"])
    assert summary["xstilts"]["train_speedup"] == pytest.approx(3.0)
    assert summary["xstilts"]["train_speedup_vs_best"] == pytest.approx(1.5)
    assert summary["xstilts"]["train_samples_per_s_least"] == pytest.approx(64 / 0.75)
    assert summary["trainer_best"]["train_speedup_least"] == pytest.approx(2.0)
    table = bench.markdown_table(summary)
    assert "| xstilts | 10 / 8 | 30.00 (30.00–30.00) | 3.00 | 1.50 |" in table


def test_profile_flag(bench: ModuleType) -> None:
    assert bench.parse_args(["--profile", "5"]).profile_steps == 5
    assert bench.parse_args(["--profile-steps", "4"]).profile_steps == 4
    assert bench.parse_args([]).profile_steps == 0
    with pytest.raises(SystemExit, match="needs at least 8 training steps"):
        bench.main(["--profile", "5", "--max-steps", "7"])


def test_step_profiler(bench: ModuleType) -> None:
    torch = pytest.importorskip("torch")
    off = bench.StepProfiler(0)
    with off:
        off.step()
    assert off.summary() == {}
    prof = bench.StepProfiler(2)
    a = torch.ones(16, 16)
    with prof:
        for _ in range(5):  # 2 waited, 1 warm-up, 2 recorded
            torch.mm(a, a)
            prof.step()
    summary = prof.summary()
    assert summary["matmul (mm, addmm, bmm)"] > 0
    assert "aten::mm" in prof.top_ops()
    short = bench.StepProfiler(3)
    with short:
        for _ in range(4):
            torch.mm(a, a)
            short.step()
    with pytest.raises(RuntimeError, match="profiler saw 4 steps"):
        short.summary()
