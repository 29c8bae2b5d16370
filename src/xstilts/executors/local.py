"""The local executor: runs a plan's stages in dependency order in this process, with rich progress.

Finished stages are reused (after checking their files against the manifest written when they were
published: a corrupt upstream is recomputed, never loaded). A stage another live worker holds is
waited for (polling), so several `xstilts run` processes on one store share the work: each stage
runs once, and a dead worker's stage is taken over when its lease expires. Failures are recorded
and the rest of the plan goes on; stages downstream of a failure are reported as blocked."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from xstilts import pipeline
from xstilts.distributed import launch_stage
from xstilts.executors import register_executor
from xstilts.plan import Plan, Stage
from xstilts.store import LeaseKeeper, Store, lease_seconds


class LeaseLostError(RuntimeError):
    """Another worker took the stage over while this one ran it (this one stalled past its lease);
    this worker's output is discarded."""


class UpstreamCorruptError(RuntimeError):
    """An upstream stage's files did not match their manifest; it was invalidated to be rerun."""


@dataclass
class ExecutionReport:
    ran: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)
    """Stages another worker ran (or still runs) while this one waited."""
    recomputed: list[str] = field(default_factory=list)
    """Finished stages found corrupt and invalidated, to be run again."""


def last_line(text: str | None) -> str:
    """The last non-blank line of an error text (a traceback's message), or "failed"."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "failed"


def poll_seconds() -> float:
    raw = os.environ.get("XSTILTS_POLL_SECONDS", "").strip()
    return float(raw) if raw else min(5.0, max(0.2, lease_seconds() / 4))


def seed_stage(key: str) -> None:
    """Seed the global RNGs from the stage key, so what a stage does (e.g. a head's initial
    weights) does not depend on which stages this process ran before it: a resumed or
    distributed run gives the same numbers as one uninterrupted process."""
    import torch

    seed = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def check_upstream(stage: Stage, store: Store) -> None:
    """Verify every dependency's files (SHA-256) before they are loaded; a corrupt one is
    invalidated and UpstreamCorruptError raised."""
    for dep in stage.deps:
        problems = store.verify(dep)
        if problems:
            store.invalidate(dep, "; ".join(problems)[:2000])
            raise UpstreamCorruptError(f"{dep}: " + "; ".join(problems[:3]))


def run_stage(stage: Stage, plan: Plan, store: Store, progress: Progress | None = None) -> dict:
    """Run one claimed stage into a scratch folder, then publish it atomically and mark it done.
    The lease is renewed by a heartbeat thread meanwhile."""
    check_upstream(stage, store)
    work = store.work_dir(stage.key)
    out = work / "out"
    if out.exists():
        shutil.rmtree(out)  # partial output of a killed attempt; the training checkpoint is kept
    out.mkdir()
    upstream = store.stage_dir(stage.deps[0]) if stage.deps else None
    task_id = None
    if progress is not None:
        task_id = progress.add_task(stage.label, total=None)

    def on_step(label: str, step: int, total: int, loss: float) -> None:
        if progress is not None and task_id is not None:
            progress.update(
                task_id, completed=step, total=total, description=f"{label} loss {loss:.3f}"
            )

    def on_file(lang: str) -> None:
        if progress is not None and task_id is not None:
            progress.advance(task_id)

    seed_stage(stage.key)
    try:
        with LeaseKeeper(store.root, stage.key) as keeper:
            processes = plan.study.resources.training_processes
            if stage.kind == "encoder":
                summary = pipeline.run_encoder_stage(stage, plan.study, work, out)
            elif stage.kind in ("intermediate", "target") and processes > 1:
                assert upstream is not None
                summary = launch_stage(stage, plan.study, upstream, work, out, processes)
            elif stage.kind == "intermediate":
                assert upstream is not None
                summary = pipeline.run_intermediate_stage(
                    stage, plan.study, upstream, work, out, on_step
                )
            elif stage.kind == "target":
                assert upstream is not None
                summary = pipeline.run_target_stage(stage, plan.study, upstream, work, out, on_step)
            else:
                assert upstream is not None
                if progress is not None and task_id is not None:
                    langs = {k.split("/")[0] for k in stage.paths}
                    progress.update(task_id, total=len(langs))
                summary = pipeline.run_evaluate_stage(stage, plan.study, upstream, out, on_file)
    finally:
        if progress is not None and task_id is not None:
            progress.remove_task(task_id)
    if keeper.lost or not store.owns(stage.key):
        shutil.rmtree(out, ignore_errors=True)
        raise LeaseLostError(f"{stage.key}: another worker took this stage over")
    store.publish(stage.key, out)
    if not store.finish(stage.key, summary):
        raise LeaseLostError(f"{stage.key}: another worker took this stage over while publishing")
    shutil.rmtree(work, ignore_errors=True)
    return summary


@dataclass
class _Sched:
    """Which stages this worker still has to see through, and what it knows about them."""

    pending: list[Stage]
    started: float
    attempted: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    seen_running: set[str] = field(default_factory=set)
    """Stages seen held by another worker: when they finish they count as that worker's."""


def _failed_now(store: Store, key: str, sched: _Sched) -> bool:
    """Whether a failed stage failed during this invocation (here or in another worker): such a
    stage is not retried until the next `xstilts run`; one that failed before is, once."""
    when = store.finished_at(key)
    return key in sched.attempted or when is None or when >= sched.started


def stage_outcome(store: Store, stage: Stage, sched: _Sched) -> str:
    """What to do with a pending stage now: done | failed | blocked | wait | claim, or
    `dep:<key>` when a dependency is neither done, nor pending here, nor held by anyone."""
    rec = store.get(stage.key)
    if rec is not None and rec.status == "done" and store.artifact_ok(stage.key):
        return "done"
    if stage.key in sched.failed:
        return "failed"
    if rec is not None and rec.status == "failed" and _failed_now(store, stage.key, sched):
        return "failed"
    pending = {s.key for s in sched.pending}
    for dep in stage.deps:
        if dep in sched.failed:
            return "blocked"
        dep_rec = store.get(dep)
        if dep_rec is not None and dep_rec.status == "done" and store.artifact_ok(dep):
            continue
        if dep_rec is not None and dep_rec.status == "failed":
            if dep not in pending or _failed_now(store, dep, sched):
                return "blocked"
            return "wait"
        if dep in pending or (dep_rec is not None and store.holder_alive(dep_rec)):
            return "wait"
        return f"dep:{dep}"
    if rec is not None and store.holder_alive(rec):
        return "wait"
    return "claim"


def execute_plan(
    plan: Plan, store: Store, console: Console | None = None, **_options: Any
) -> ExecutionReport:
    console = console or Console()
    report = ExecutionReport()
    sched = _Sched(pending=list(plan.ordered_stages()), started=time.time())
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        total = len(sched.pending)
        overall = progress.add_task("stages", total=total)
        mine: set[str] = set()
        while sched.pending:
            acted = False
            waiting = False
            for stage in list(sched.pending):
                what = stage_outcome(store, stage, sched)
                if what.startswith("dep:") and what[4:] not in plan.stages:
                    what = "blocked"  # its input is not built and not in this (filtered) plan
                if what == "wait":
                    waiting = True
                    continue
                if what.startswith("dep:"):  # invalidated (corrupt) by another worker: redo it
                    redo = plan.stages[what[4:]]
                    sched.pending.insert(sched.pending.index(stage), redo)
                    report.recomputed.append(redo.key)
                    total += 1
                    progress.update(overall, total=total)
                    acted = True
                    break
                if what == "claim":
                    if not store.try_claim(stage.key, stage.label):
                        waiting = True
                        continue
                    sched.attempted.add(stage.key)
                    try:
                        run_stage(stage, plan, store, progress)
                        report.ran.append(stage.key)
                        mine.add(stage.key)
                    except UpstreamCorruptError as exc:
                        store.release(stage.key, "upstream corrupt")
                        sched.attempted.discard(stage.key)
                        console.print(f"[yellow]recomputing corrupt upstream[/yellow] {exc}")
                        for dep in stage.deps:
                            if not store.is_done(dep) and all(p.key != dep for p in sched.pending):
                                sched.pending.insert(0, plan.stages[dep])
                                report.recomputed.append(dep)
                                for lst in (report.reused, report.busy, report.ran):
                                    if dep in lst:
                                        lst.remove(dep)
                                total += 1
                                progress.update(overall, total=total)
                        acted = True
                        break
                    except KeyboardInterrupt:
                        store.fail(stage.key, "interrupted")
                        raise
                    except LeaseLostError as exc:
                        console.print(f"[yellow]lease lost[/yellow] {stage.label}: {exc}")
                        acted = True
                        break  # the stage is another worker's now: see it through as theirs
                    except Exception as exc:  # recorded, shown, and the rest of the plan goes on
                        store.fail(stage.key, "".join(traceback.format_exception(exc)))
                        sched.failed.add(stage.key)
                        report.failed[stage.key] = f"{type(exc).__name__}: {exc}"
                        console.print(
                            f"[red]failed[/red] {stage.label}: {type(exc).__name__}: {exc}"
                        )
                elif what == "done":
                    if stage.key not in mine:
                        others = stage.key in sched.seen_running
                        (report.busy if others else report.reused).append(stage.key)
                elif what == "failed":
                    if stage.key not in report.failed:
                        rec = store.get(stage.key)
                        report.failed[stage.key] = last_line(rec.error if rec else None)
                else:  # blocked
                    sched.failed.add(stage.key)
                    report.blocked.append(stage.key)
                sched.pending.remove(stage)
                progress.advance(overall)
                acted = True
                break  # rescan from the top: dependency order first
            if not acted and waiting:
                for stage in sched.pending:
                    rec = store.get(stage.key)
                    if rec is not None and rec.status == "running":
                        sched.seen_running.add(stage.key)
                time.sleep(poll_seconds())
    return report


register_executor("local")(execute_plan)


def run_one_stage(
    plan: Plan, store_root: str | os.PathLike[str], key: str, *, _depth: int = 0
) -> dict[str, Any]:
    """See one stage through from a remote worker (a Ray task, a Slurm job): reuse it if done,
    wait while another live worker holds it, else claim and run it. Returns its outcome:
    {"key", "status": ran | reused | busy | failed | blocked, "error"}."""
    store = Store(Path(store_root))
    stage = plan.stages[key]
    sched = _Sched(pending=[stage], started=time.time())
    try:
        while True:
            what = stage_outcome(store, stage, sched)
            if what == "done":
                status = "busy" if key in sched.seen_running else "reused"
                return {"key": key, "status": status, "error": None}
            if what in ("failed", "blocked"):
                rec = store.get(key)
                return {"key": key, "status": what, "error": rec.error if rec else None}
            if what.startswith("dep:"):
                if _depth > len(plan.stages):
                    raise RuntimeError(f"{key}: dependency {what[4:]} cannot be made")
                run_one_stage(plan, store_root, what[4:], _depth=_depth + 1)
                continue
            if what == "claim" and store.try_claim(key, stage.label):
                sched.attempted.add(key)
                try:
                    run_stage(stage, plan, store)
                    return {"key": key, "status": "ran", "error": None}
                except UpstreamCorruptError:
                    store.release(key, "upstream corrupt")
                    sched.attempted.discard(key)
                    if _depth > len(plan.stages):
                        raise
                    for dep in stage.deps:
                        if not store.is_done(dep):
                            run_one_stage(plan, store_root, dep, _depth=_depth + 1)
                    continue
                except LeaseLostError:
                    continue
                except Exception as exc:
                    error = "".join(traceback.format_exception(exc))
                    store.fail(key, error)
                    return {"key": key, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            rec = store.get(key)
            if rec is not None and rec.status == "running":
                sched.seen_running.add(key)
            time.sleep(poll_seconds())
    finally:
        store.close()


def report_from_outcomes(outcomes: list[dict[str, Any]]) -> ExecutionReport:
    report = ExecutionReport()
    for o in outcomes:
        status, key = o["status"], o["key"]
        if status == "failed":
            report.failed[key] = last_line(o.get("error"))
        else:
            getattr(
                report, {"ran": "ran", "reused": "reused", "busy": "busy"}.get(status, "blocked")
            ).append(key)
    return report


def worker_env() -> dict[str, str]:
    """The environment a remote worker needs to see the study as this process does."""
    keep = ("XSTILTS_", "HF_", "TRANSFORMERS_", "TOKENIZERS_PARALLELISM", "CUBLAS_WORKSPACE_CONFIG")
    return {k: v for k, v in os.environ.items() if k.startswith(keep)}


def stage_levels(plan: Plan) -> dict[str, int]:
    """Dependency depth of every stage: 0 for stages without dependencies."""
    levels: dict[str, int] = {}
    for stage in plan.ordered_stages():
        levels[stage.key] = 1 + max((levels[d] for d in stage.deps), default=-1)
    return levels
