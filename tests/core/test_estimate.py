"""Dry-run estimates come from stages this store has measured; shards split runs, not stages."""

from __future__ import annotations

from pathlib import Path

from xstilts.estimate import estimate, work_units
from xstilts.plan import build_plan, shard_plan
from xstilts.store import Store
from xstilts.study import parse_study

STUDY = """
[study]
name = "e"
data_dir = "{data}"
seeds = [1, 2, 3]
languages = ["en", "de"]

[[models]]
name = "m"
layers = 1

[[conditions]]
name = "none"

[[conditions]]
name = "ud_upos"

[intermediate]
budget_size = 100
epochs = 2

[target]
max_train_examples = 50

[evaluation]
max_examples_per_file = 10
"""


def test_units_shards_and_estimates(tmp_path: Path, shared_data: Path) -> None:
    plan = build_plan(parse_study(STUDY.format(data=shared_data), tmp_path / "s.toml"))
    units = {s.kind: work_units(s, plan) for s in plan.ordered_stages()}
    assert units == {"encoder": 1.0, "intermediate": 200.0, "target": 50.0, "evaluate": 40.0}

    a, b = shard_plan(plan, 0, 2), shard_plan(plan, 1, 2)
    assert [r.run_id for r in a.runs] + [r.run_id for r in b.runs] != []
    assert sorted(r.run_id for r in a.runs + b.runs) == sorted(r.run_id for r in plan.runs)
    assert set(a.stages) | set(b.stages) == set(plan.stages)
    assert any(s.kind == "encoder" for s in a.stages.values())  # shared stages go to every shard

    store = Store(tmp_path / "out")
    assert all(row.seconds is None for row in estimate(plan, store) if row.to_run)
    # pretend the first target stage ran for 10 s: the other five are estimated from it
    first = next(s for s in plan.ordered_stages() if s.kind == "target")
    assert store.try_claim(first.key, first.label)
    folder = store.work_dir(first.key) / "out"
    folder.mkdir()
    (folder / "summary.json").write_text("{}")
    store.publish(first.key, folder)
    store.finish(first.key, {})
    with store._tx() as conn:  # move the events 10 s apart
        conn.execute(
            "UPDATE events SET at = at - 10 WHERE key = ? AND event = 'claim'", (first.key,)
        )
    rows = {r.kind: r for r in estimate(plan, store)}
    assert rows["target"].to_run == 5 and rows["target"].reused == 1
    assert rows["target"].seconds is not None
    assert abs(rows["target"].seconds - 50.0) < 1.0
