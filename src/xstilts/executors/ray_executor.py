"""The Ray executor: one Ray task per unfinished stage, with resource requests from the study's
`[resources]` table (`num_gpus` for the stages that train when `gpus` is set) and dependencies
passed as task arguments, so a target task starts only after its intermediate task finished.

Every task opens the same store (the output dir must be on a filesystem all nodes share), claims
its stage with a lease and runs it exactly as `xstilts run` would locally: the keys, folders and
results are the same whichever executor made them. A task whose worker dies is retried by Ray
(`max_retries`); the retry takes the dead worker's lease over."""

from __future__ import annotations

import os
import time
from typing import Any

from rich.console import Console

from xstilts.executors import register_executor, require
from xstilts.executors.local import (
    ExecutionReport,
    report_from_outcomes,
    run_one_stage,
    worker_env,
)
from xstilts.plan import Plan, Stage
from xstilts.store import Store
from xstilts.study import Resources

TRAINING_KINDS = ("intermediate", "target")


def stage_resources(stage: Stage, res: Resources) -> dict[str, Any]:
    """Ray task options for one stage: CPUs, GPUs (training stages get `gpus`, evaluation
    `eval_gpus`, the encoder import none) and memory."""
    gpus = (
        res.gpus
        if stage.kind in TRAINING_KINDS
        else res.eval_gpus
        if stage.kind == "evaluate"
        else 0
    )
    opts: dict[str, Any] = {"num_cpus": res.cpus, "num_gpus": gpus}
    if res.memory_gb is not None:
        opts["memory"] = int(res.memory_gb * 1024**3)
    return opts


def _ray_stage(
    plan: Plan, store_root: str, key: str, env: dict[str, str], *upstream: dict[str, Any]
) -> dict[str, Any]:
    """The body of a stage's Ray task (module-level: workers import it by name)."""
    os.environ.update(env)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for dep in upstream:
        if dep["status"] in ("failed", "blocked"):
            return {
                "key": key,
                "status": "blocked",
                "error": f"upstream {dep['key']} {dep['status']}",
            }
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    return run_one_stage(plan, store_root, key)


@register_executor("ray")
def execute_ray(
    plan: Plan,
    store: Store,
    console: Console | None = None,
    *,
    address: str | None = None,
    max_retries: int = 3,
    **_options: Any,
) -> ExecutionReport:
    """Run the plan's unfinished stages as Ray tasks on the cluster at `address` (default: the
    one `ray start` made on this machine, or RAY_ADDRESS)."""
    ray = require("ray", "ray")

    console = console or Console()
    started = time.perf_counter()
    ray.init(address=address or os.environ.get("RAY_ADDRESS") or "auto", ignore_reinit_error=True,
             logging_level="WARNING", log_to_driver=False)  # fmt: skip
    try:
        task = ray.remote(_ray_stage)
        env = worker_env() | {"XSTILTS_DATA_DIR": str(plan.study.data_dir())}
        plan_ref = ray.put(plan)
        root = str(store.root.resolve())
        refs: dict[str, Any] = {}
        outcomes: list[dict[str, Any]] = []
        done_outcome: dict[str, dict[str, Any]] = {}
        for stage in plan.ordered_stages():
            if store.is_done(stage.key):
                done_outcome[stage.key] = {"key": stage.key, "status": "reused", "error": None}
                outcomes.append(done_outcome[stage.key])
                continue
            ups = [refs.get(d, done_outcome.get(d)) for d in stage.deps]
            opts = stage_resources(stage, plan.study.resources)
            refs[stage.key] = task.options(
                name=f"xstilts:{stage.kind}:{stage.key[-8:]}", max_retries=max_retries, **opts
            ).remote(plan_ref, root, stage.key, env, *ups)
            console.print(
                f"submitted {stage.kind:12s} {stage.key}  ({opts['num_cpus']} CPU, "
                f"{opts['num_gpus']} GPU)  {stage.label}"
            )
        pending = {ref: key for key, ref in refs.items()}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                key = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as exc:  # the task itself died (worker lost, retries spent)
                    outcome = {
                        "key": key,
                        "status": "failed",
                        "error": f"{type(exc).__name__}: {exc}",
                    }
                outcomes.append(outcome)
                colour = {"ran": "green", "failed": "red", "blocked": "red"}.get(
                    outcome["status"], "dim"
                )
                console.print(
                    f"[{colour}]{outcome['status']:8s}[/] {plan.stages[key].label} "
                    f"({time.perf_counter() - started:.0f}s)"
                )
    finally:
        ray.shutdown()
    return report_from_outcomes(outcomes)
