"""One training stage on several processes: data-parallel (DDP) through accelerate.

`launch_stage` is what the executor calls for an intermediate or target stage when the study's
`[resources] train_processes` (default: `gpus`) is above 1. It writes the stage as a JSON job
into the stage's work folder and starts `python -m torch.distributed.run --standalone
--nproc_per_node N -m xstilts.distributed JOB` (the launcher `accelerate launch --multi_gpu`
uses). In each process accelerate's `PartialState` sets up the process group (NCCL on GPUs, one
per process; gloo on CPUs) and the stage body runs as in one process: `train_model` sees the
process group, wraps the model in DistributedDataParallel, gives each process an equal slice of
every batch (the gradient is the whole batch's mean, so the effective batch and the learning
rate are the study's) and averages the loss across processes.

Process 0 writes into the stage's folders; the others write into `work/ddp/rank<k>/`, which is
deleted afterwards (their weights are the same as process 0's). A killed stage resumes on every
process from process 0's last checkpoint. Each process evaluates English
dev itself, so all take the same checkpoint decision without talking. Dropout draws differ per
process, so a run on N processes is not bit-identical to one on one process; like the GPU it ran
on, the process count is a resource and not part of the stage key.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

JOB_FILE = "job.json"
LOG_FILE = "ddp.log"


class DistributedStageError(RuntimeError):
    """A multi-process stage whose launcher exited with an error (its log is named)."""


def world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a process group."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def shard(indices: Any, rank: int, size: int) -> tuple[Any, float]:
    """This process's slice of a batch and the weight of its mean loss, such that the average
    of the weighted losses over processes (what DDP's gradient averaging computes) is the mean
    over the whole batch. A process whose slice would be empty repeats the first example with
    weight 0 (every process must take part in the gradient all-reduce)."""
    n = len(indices)
    part = indices[rank::size]
    if len(part) == 0:
        return indices[:1], 0.0
    return part, len(part) * size / n


def all_mean(value: float) -> float:
    """The mean of `value` over the processes (itself outside a process group)."""
    _, size = world()
    if size == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    if torch.distributed.get_backend() == "nccl":
        t = t.cuda()
    torch.distributed.all_reduce(t)
    return float(t.item()) / size


def launch_stage(
    stage: Any,
    study: Any,
    upstream: Path,
    work: Path,
    out: Path,
    processes: int,
) -> dict[str, Any]:
    """Run a training stage on `processes` processes; returns process 0's summary."""
    ddp = work / "ddp"
    shutil.rmtree(ddp, ignore_errors=True)
    ddp.mkdir(parents=True)
    # A resumed stage: every process starts from process 0's checkpoint (the processes' weights
    # and optimizer states are the same; only their dropout random streams differ).
    for r in range(1, processes):
        folder = ddp / f"rank{r}"
        folder.mkdir()
        for name in ("checkpoint", "best.safetensors", "best.json"):
            src = work / name
            if src.is_dir():
                shutil.copytree(src, folder / name)
            elif src.is_file():
                shutil.copy2(src, folder / name)
    job = {
        "stage": {
            "key": stage.key,
            "kind": stage.kind,
            "label": stage.label,
            "deps": list(stage.deps),
            "spec": stage.spec,
            "paths": {k: str(v) for k, v in stage.paths.items()},
        },
        "study": study.model_dump(mode="json"),
        "study_source": str(study.source_path) if study.source_path else None,
        "upstream": str(upstream),
        "work": str(work),
        "out": str(out),
    }
    (ddp / JOB_FILE).write_text(json.dumps(job))
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={processes}", "-m", "xstilts.distributed", str(ddp / JOB_FILE),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    with open(ddp / LOG_FILE, "w", encoding="utf-8") as log:
        done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
    if done.returncode != 0:
        tail = (ddp / LOG_FILE).read_text(encoding="utf-8", errors="replace")[-2000:]
        raise DistributedStageError(
            f"{stage.label}: training on {processes} processes failed (exit {done.returncode}); "
            f"log {ddp / LOG_FILE}:\n{tail}"
        )
    summary = json.loads((out / "summary.json").read_text())  # process 0's, as in one process
    for extra in ddp.glob("rank*"):
        shutil.rmtree(extra, ignore_errors=True)
    return summary


def _run_job(job_file: Path) -> None:
    from accelerate import PartialState

    from xstilts import pipeline
    from xstilts.plan import Stage
    from xstilts.study import Study

    job = json.loads(job_file.read_text())
    state = PartialState(cpu=not torch.cuda.is_available())
    if torch.cuda.is_available():
        torch.cuda.set_device(state.local_process_index)
    rank = state.process_index
    s = job["stage"]
    stage = Stage(
        s["key"], s["kind"], s["label"], tuple(s["deps"]), s["spec"],
        {k: Path(v) for k, v in s["paths"].items()},
    )  # fmt: skip
    study = Study.model_validate(
        {**job["study"], "source_path": Path(job["study_source"]) if job["study_source"] else None}
    )
    work, out = Path(job["work"]), Path(job["out"])
    if rank != 0:  # same computation, private folders: process 0's output is the stage's
        work = job_file.parent / f"rank{rank}"
        out = work / "out"
        out.mkdir(parents=True, exist_ok=True)
    body = {"intermediate": pipeline.run_intermediate_stage, "target": pipeline.run_target_stage}
    summary = body[stage.kind](stage, study, Path(job["upstream"]), work, out, lambda *_: None)
    if rank == 0:  # the stage's summary.json records the process count too
        from xstilts.store import atomic_write_json

        atomic_write_json(out / "summary.json", {**summary, "processes": state.num_processes})
    state.wait_for_everyone()
    state.destroy_process_group()


if __name__ == "__main__":
    _run_job(Path(sys.argv[1]))
