"""The Slurm executor, through submitit: one job array per dependency level and resource class
(stages that train ask for `[resources] gpus`, evaluation for `eval_gpus`), each array waiting
for the previous level (`--dependency=afterany:<array ids>` on Slurm; level by level for
submitit's local and debug executors, which tests use).

Every array task opens the shared store and runs one stage as `xstilts run` would (claim, lease,
publish, finish), so keys and folders are the same as with any executor. Preemption and time
limits follow submitit's checkpointing protocol: on the signal, `StageJob.checkpoint` gives the
stage's lease back and submitit requeues the task, which resumes training from the stage's last
checkpoint in `work/<key>/checkpoint`."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from rich.console import Console

from xstilts.executors import register_executor, require
from xstilts.executors.local import (
    ExecutionReport,
    report_from_outcomes,
    run_one_stage,
    stage_levels,
    worker_env,
)
from xstilts.executors.ray_executor import TRAINING_KINDS
from xstilts.plan import Plan, Stage
from xstilts.store import Store
from xstilts.study import Resources


class StageJob:
    """A submitit job body: run one stage of `plan`; checkpointable (requeued on preemption)."""

    def __init__(self, plan: Plan, store_root: str, env: dict[str, str]) -> None:
        self.plan, self.store_root, self.env = plan, store_root, env

    def __call__(self, key: str) -> dict[str, Any]:
        os.environ.update(self.env)
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        return run_one_stage(self.plan, self.store_root, key)

    def checkpoint(self, key: str) -> Any:
        """Called by submitit on preemption / timeout: release the lease so the requeued task
        can claim the stage at once (its training checkpoint is on disk), then requeue."""
        import submitit

        try:
            store = Store(Path(self.store_root), timeout=5.0)
            try:
                store.release(key, "preempted: requeued")
            finally:
                store.close()
        except Exception:  # best effort: the lease expires anyway
            pass
        return submitit.helpers.DelayedSubmission(
            StageJob(self.plan, self.store_root, self.env), key
        )


def resource_class(stage: Stage, res: Resources) -> tuple[int, int]:
    """(GPUs, CPUs) one stage asks for."""
    if stage.kind in TRAINING_KINDS:
        return res.gpus, res.cpus
    if stage.kind == "evaluate":
        return res.eval_gpus, res.cpus
    return 0, res.cpus


def job_groups(plan: Plan, keys: list[str]) -> list[tuple[int, tuple[int, int], list[str]]]:
    """The job arrays: (level, (gpus, cpus), stage keys), in submission order."""
    levels = stage_levels(plan)
    groups: dict[tuple[int, tuple[int, int]], list[str]] = defaultdict(list)
    for key in keys:
        groups[(levels[key], resource_class(plan.stages[key], plan.study.resources))].append(key)
    return [(lvl, cls, ks) for (lvl, cls), ks in sorted(groups.items())]


def slurm_parameters(
    res: Resources,
    gpus: int,
    cpus: int,
    *,
    name: str,
    partition: str | None,
    after: list[str],
    extra: dict[str, str] | None,
) -> dict[str, Any]:
    """submitit AutoExecutor parameters of one array (the `slurm_` ones are ignored locally)."""
    params: dict[str, Any] = {
        "name": name,
        "timeout_min": res.time_minutes,
        "cpus_per_task": cpus,
        "gpus_per_node": gpus,
        "tasks_per_node": 1,
        "nodes": 1,
        "slurm_signal_delay_s": 120,
    }
    if res.memory_gb is not None:
        params["mem_gb"] = res.memory_gb
    if partition:
        params["slurm_partition"] = partition
    additional = dict(extra or {})
    if after:
        additional["dependency"] = "afterany:" + ":".join(sorted(set(after)))
    if additional:
        params["slurm_additional_parameters"] = additional
    return params


@register_executor("slurm")
def execute_slurm(
    plan: Plan,
    store: Store,
    console: Console | None = None,
    *,
    folder: Path | None = None,
    partition: str | None = None,
    cluster: str | None = None,
    extra: dict[str, str] | None = None,
    poll: float = 5.0,
    **_options: Any,
) -> ExecutionReport:
    """Submit the plan's unfinished stages as job arrays and wait for them."""
    submitit = require("submitit", "slurm")

    console = console or Console()
    cluster = cluster or "slurm"
    folder = Path(folder) if folder else store.root / "slurm" / "%j"
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    env = worker_env() | {"XSTILTS_DATA_DIR": str(plan.study.data_dir())}
    job = StageJob(plan, str(store.root.resolve()), env)
    keys = [s.key for s in plan.ordered_stages() if not store.is_done(s.key)]
    reused = [
        {"key": s.key, "status": "reused", "error": None}
        for s in plan.ordered_stages()
        if s.key not in keys
    ]
    submit_all = cluster == "slurm"  # Slurm orders the arrays itself; elsewhere we wait per level
    outcomes: list[dict[str, Any]] = list(reused)
    array_ids: dict[int, list[str]] = defaultdict(list)
    jobs: list[tuple[str, Any]] = []
    current_level = None
    for level, (gpus, cpus), group in job_groups(plan, keys):
        if not submit_all and current_level is not None and level != current_level:
            outcomes += _wait(jobs, plan, console, poll)
            jobs = []
        current_level = level
        after = [i for lvl in range(level) for i in array_ids[lvl]] if submit_all else []
        executor.update_parameters(
            **slurm_parameters(
                plan.study.resources, gpus, cpus,
                name=f"xstilts-{plan.study.study.name}-L{level}", partition=partition,
                after=after, extra=extra,
            )
        )  # fmt: skip
        submitted = executor.map_array(job, group)
        for key, sub in zip(group, submitted, strict=True):
            jobs.append((key, sub))
            array_ids[level].append(str(sub.job_id).split("_")[0])
        console.print(
            f"submitted level {level}: {len(group)} stage(s) as array "
            f"{submitted[0].job_id.split('_')[0] if submitted else '-'} ({gpus} GPU, {cpus} CPU)"
        )
    outcomes += _wait(jobs, plan, console, poll)
    return report_from_outcomes(outcomes)


def _wait(jobs: list[tuple[str, Any]], plan: Plan, console: Console, poll: float) -> list[dict]:
    outcomes = []
    started = time.perf_counter()
    for key, job in jobs:
        try:
            outcome = job.result()
        except Exception as exc:  # the job failed outside the stage (killed, out of memory, ...)
            outcome = {"key": key, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        outcomes.append(outcome)
        colour = {"ran": "green", "failed": "red", "blocked": "red"}.get(outcome["status"], "dim")
        console.print(
            f"[{colour}]{outcome['status']:8s}[/] {plan.stages[key].label} (job {job.job_id}, "
            f"{time.perf_counter() - started:.0f}s)"
        )
    del poll
    return outcomes
