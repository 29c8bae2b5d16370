"""The local executor: runs a plan's stages in dependency order in this process, with rich progress.
Finished stages are reused, stages leased by another live worker are left to it, failures are recorded."""

from __future__ import annotations

import shutil
import time
import traceback
from dataclasses import dataclass, field

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
from xstilts.plan import Plan, Stage
from xstilts.store import Store


@dataclass
class ExecutionReport:
    ran: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)


def run_stage(stage: Stage, plan: Plan, store: Store, progress: Progress | None = None) -> dict:
    """Run one stage into a scratch folder, then publish it atomically and mark it done."""
    work = store.work_dir(stage.key)
    out = work / "out"
    if out.exists():
        shutil.rmtree(out)  # partial output of a killed attempt; the training checkpoint is kept
    out.mkdir()
    upstream = store.stage_dir(stage.deps[0]) if stage.deps else None
    task_id = None
    if progress is not None:
        task_id = progress.add_task(stage.label, total=None)
    last_renew = [time.monotonic()]

    def on_step(label: str, step: int, total: int, loss: float) -> None:
        if progress is not None and task_id is not None:
            progress.update(
                task_id, completed=step, total=total, description=f"{label} loss {loss:.3f}"
            )
        if time.monotonic() - last_renew[0] > 60:
            store.renew(stage.key)
            last_renew[0] = time.monotonic()

    def on_file(lang: str) -> None:
        if progress is not None and task_id is not None:
            progress.advance(task_id)

    try:
        if stage.kind == "encoder":
            summary = pipeline.run_encoder_stage(stage, out)
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
    store.publish(stage.key, out)
    store.finish(stage.key, summary)
    shutil.rmtree(work, ignore_errors=True)
    return summary


def execute_plan(plan: Plan, store: Store, console: Console | None = None) -> ExecutionReport:
    console = console or Console()
    report = ExecutionReport()
    stages = plan.ordered_stages()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        overall = progress.add_task("stages", total=len(stages))
        for stage in stages:
            if store.is_done(stage.key):
                report.reused.append(stage.key)
            elif any(not store.is_done(dep) for dep in stage.deps):
                report.blocked.append(stage.key)
            elif not store.try_claim(stage.key, stage.label):
                report.busy.append(stage.key)
            else:
                try:
                    run_stage(stage, plan, store, progress)
                    report.ran.append(stage.key)
                except KeyboardInterrupt:
                    store.fail(stage.key, "interrupted")
                    raise
                except Exception as exc:  # recorded, shown, and the rest of the plan goes on
                    store.fail(stage.key, "".join(traceback.format_exception(exc)))
                    report.failed[stage.key] = f"{type(exc).__name__}: {exc}"
                    console.print(f"[red]failed[/red] {stage.label}: {type(exc).__name__}: {exc}")
            progress.advance(overall)
    return report
