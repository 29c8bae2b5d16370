"""Dry-run arithmetic: how many stages of each kind run or are reused, and how long the rest
should take, from the throughput this store has measured on finished stages (no guesses)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from statistics import median

from xstilts.plan import Plan, Stage
from xstilts.store import Store


@dataclass(frozen=True)
class KindEstimate:
    kind: str
    to_run: int
    reused: int
    seconds: float | None  # None: nothing of this kind has finished here yet
    basis: str


def work_units(stage: Stage, plan: Plan) -> float:
    """What a stage's time scales with: examples trained on, or examples evaluated."""
    study = plan.study
    if stage.kind == "intermediate":
        hp = study.intermediate_for(stage.spec.get("rung"))
        if hp.budget == "steps":
            return float(hp.budget_size * hp.batch_size * hp.grad_accum)
        n = hp.budget_size if hp.budget == "examples" else (hp.max_train_examples or 10_000)
        if hp.max_steps is not None:
            return float(hp.max_steps * hp.batch_size * hp.grad_accum)
        return float(n * hp.epochs)
    if stage.kind == "target":
        tp = study.target_for(stage.spec.get("rung"))
        n = tp.max_train_examples or 8_000
        return float(n * tp.epochs if tp.max_steps is None else tp.max_steps * tp.batch_size)
    if stage.kind == "evaluate":
        per_file = study.evaluation.max_examples_per_file or 2_000
        return float(per_file * len(stage.paths))
    return 1.0


def rung_of(stage: Stage) -> str:
    return stage.label.split(":", 1)[0]


def measured_seconds(store: Store, key: str) -> float | None:
    """Wall time of a finished stage: its last claim (or takeover) to its 'done' event."""
    started = None
    for event in store.events(key):
        if event["event"] in ("claim", "takeover"):
            started = event["at"]
        elif event["event"] == "done" and started is not None:
            return float(event["at"] - started)
    return None


def estimate(plan: Plan, store: Store) -> list[KindEstimate]:
    rates: dict[tuple[str, str], list[float]] = defaultdict(list)
    for stage in plan.ordered_stages():
        if store.is_done(stage.key) and (sec := measured_seconds(store, stage.key)) is not None:
            rates[(stage.kind, rung_of(stage))].append(sec / work_units(stage, plan))
    out = []
    for kind in ("encoder", "intermediate", "target", "evaluate"):
        stages = [s for s in plan.ordered_stages() if s.kind == kind]
        todo = [s for s in stages if not store.is_done(s.key)]
        total, exact, rough = 0.0, 0, 0
        for stage in todo:
            same = rates.get((kind, rung_of(stage)))
            anyr = [r for (k, _), v in rates.items() if k == kind for r in v]
            if same:
                total += median(same) * work_units(stage, plan)
                exact += 1
            elif anyr:
                total += median(anyr) * work_units(stage, plan)
                rough += 1
        known = exact + rough == len(todo)
        basis = (
            "nothing to run" if not todo
            else f"{exact} from the same rung, {rough} from other rungs"
            if known else "no finished stage of this kind yet"
        )  # fmt: skip
        out.append(
            KindEstimate(kind, len(todo), len(stages) - len(todo), total if known else None, basis)
        )
    return out
