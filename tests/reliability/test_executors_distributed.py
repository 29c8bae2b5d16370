"""The Ray and Slurm (submitit) executors run the tiny study into a store with the same keys and
the same results as the local executor. Ray: a real local cluster (`ray start --head` on
127.0.0.1, 2 CPUs) started and stopped by the test. Slurm: submitit's LocalExecutor (real
subprocess jobs, one array per dependency level) and DebugExecutor, plus preemption: a job
signalled mid-training is requeued through submitit's checkpoint protocol and resumes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_helpers import (
    REPO,
    assert_same_results,
    cli_env,
    run_cli,
    store_events,
    write_study,
)
from rich.console import Console

from xstilts.plan import build_plan
from xstilts.store import Store
from xstilts.study import load_study


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def ray_cluster(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A one-node Ray cluster on 127.0.0.1 in its own process group; stopped by killing that
    group (never `ray stop`, which would stop every Ray process on the machine)."""
    pytest.importorskip("ray")
    port = _free_port()
    temp = Path("/tmp") / f"xr{os.getpid()}"  # Ray's socket paths must stay short
    ray_bin = Path(sys.executable).with_name("ray")
    log = (tmp_path / "ray.log").open("wb")
    proc = subprocess.Popen(
        [str(ray_bin), "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
         "--num-cpus=2", "--num-gpus=0", "--include-dashboard=false", f"--temp-dir={temp}",
         "--disable-usage-stats", "--block"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=cli_env(),
    )  # fmt: skip
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while b"--block" not in (tmp_path / "ray.log").read_bytes():
        assert proc.poll() is None and time.monotonic() < deadline, (
            tmp_path / "ray.log"
        ).read_text()
        time.sleep(0.5)
    try:
        yield address
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=8)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_ray_executor_on_a_local_cluster(
    tmp_path: Path, shared_data: Path, tiny_encoder: Path, baseline: Path, ray_cluster: str
) -> None:
    out = tmp_path / "runs"
    study = write_study(tmp_path / "study.toml", out, shared_data, encoder=tiny_encoder)
    ran = run_cli("run", str(study), "--executor", "ray", "--address", ray_cluster)
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-4000:]
    assert "submitted intermediate" in ran.stdout
    events = store_events(out)
    workers = {w for _k, e, w, _ in events if e == "claim"}
    assert len(workers) >= 2  # stages ran in Ray worker processes, not one process
    done = [k for k, e, *_ in events if e == "done"]
    assert sorted(done) == sorted(set(done)) and len(done) == 11
    assert_same_results(baseline, out)


def test_ray_resources_follow_the_study(
    tmp_path: Path, shared_data: Path, tiny_encoder: Path
) -> None:
    from xstilts.executors.ray_executor import stage_resources

    study = write_study(tmp_path / "s.toml", tmp_path / "runs", shared_data, encoder=tiny_encoder,
                        extra="[resources]\ngpus = 1\ncpus = 4\nmemory_gb = 16\n")  # fmt: skip
    plan = build_plan(load_study(study))
    res = {s.kind: stage_resources(s, plan.study.resources) for s in plan.ordered_stages()}
    assert res["intermediate"]["num_gpus"] == res["target"]["num_gpus"] == 1
    assert res["encoder"]["num_gpus"] == res["evaluate"]["num_gpus"] == 0
    assert res["target"]["num_cpus"] == 4 and res["target"]["memory"] == 16 * 1024**3


def test_slurm_arrays_per_dependency_level(
    tmp_path: Path, shared_data: Path, tiny_encoder: Path
) -> None:
    from xstilts.executors.slurm_executor import job_groups

    study = write_study(tmp_path / "s.toml", tmp_path / "runs", shared_data, encoder=tiny_encoder,
                        extra="[resources]\ngpus = 1\n")  # fmt: skip
    plan = build_plan(load_study(study))
    groups = job_groups(plan, list(plan.stages))
    kinds = [
        (lvl, gpus, sorted({plan.stages[k].kind for k in keys})) for lvl, (gpus, _), keys in groups
    ]
    assert kinds == [
        (0, 0, ["encoder"]),
        (1, 1, ["intermediate", "target"]),  # the control's target needs only the encoder
        (2, 0, ["evaluate"]),
        (2, 1, ["target"]),
        (3, 0, ["evaluate"]),
    ]


@pytest.mark.slow
def test_slurm_executor_with_submitit_local_jobs(
    tmp_path: Path, shared_data: Path, tiny_encoder: Path, baseline: Path
) -> None:
    pytest.importorskip("submitit")
    out = tmp_path / "runs"
    study = write_study(tmp_path / "study.toml", out, shared_data, encoder=tiny_encoder)
    ran = run_cli("run", str(study), "--executor", "slurm", "--slurm-cluster", "local",
                  "--slurm-folder", str(tmp_path / "jobs" / "%j"))  # fmt: skip
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-4000:]
    assert "submitted level 3" in ran.stdout
    assert_same_results(baseline, out)


@pytest.mark.slow
def test_slurm_debug_executor_in_process(
    tmp_path: Path, shared_data: Path, tiny_encoder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("submitit")
    from xstilts.executors import get_executor

    out = tmp_path / "runs"
    study = write_study(tmp_path / "study.toml", out, shared_data, encoder=tiny_encoder,
                        seeds="[3]", conditions="")  # fmt: skip
    plan = build_plan(load_study(study))
    report = get_executor("slurm")(plan, Store(out), Console(quiet=True), cluster="debug",
                                   folder=tmp_path / "jobs")  # fmt: skip
    assert sorted(report.ran) == sorted(plan.stages) and not report.failed


@pytest.mark.slow
def test_preempted_training_job_is_requeued_and_resumes(
    tmp_path: Path, shared_data: Path, tiny_encoder: Path
) -> None:
    submitit = pytest.importorskip("submitit")
    from xstilts.executors.local import run_one_stage, worker_env
    from xstilts.executors.slurm_executor import StageJob

    # a target phase long enough to be caught mid-training
    def study_at(root: Path) -> Path:
        path = write_study(root / "study.toml", root / "runs", shared_data, encoder=tiny_encoder,
                           seeds="[3]", conditions="")  # fmt: skip
        path.write_text(
            path.read_text().replace("max_train_examples = 32", "max_train_examples = 400")
        )
        return path

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plan = build_plan(load_study(study_at(tmp_path / "a")))
    enc = next(s.key for s in plan.ordered_stages() if s.kind == "encoder")
    target = next(s.key for s in plan.ordered_stages() if s.kind == "target")
    root = tmp_path / "a" / "runs"
    assert run_one_stage(plan, root, enc)["status"] == "ran"

    executor = submitit.AutoExecutor(folder=tmp_path / "jobs", cluster="local")
    executor.update_parameters(timeout_min=10)
    env = worker_env() | cli_env() | {"XSTILTS_DATA_DIR": str(shared_data)}
    job = executor.submit(StageJob(plan, str(root), env), target)
    state = root / "work" / target / "checkpoint" / "state.json"
    deadline = time.monotonic() + 300
    while not state.exists():
        assert time.monotonic() < deadline and not job.done(), job.stderr()
        time.sleep(0.05)
    # what Slurm does on preemption or near the time limit: USR2 to the job's task process
    # (submitit's LocalJob._interrupt signals its controller, which does not forward USR2)
    (task_pid,) = _children(job._process.pid)
    os.kill(task_pid, signal.SIGUSR2)
    outcome = job.result()
    assert outcome["status"] == "ran", outcome
    events = [(e, w) for k, e, w, _ in store_events(root) if k == target]
    kinds = [e for e, _ in events]
    assert kinds == ["claim", "release", "claim", "done"], events  # released, requeued, resumed
    assert events[0][1] != events[2][1]  # by another process

    # the same stage uninterrupted, in another store: the same files, bit for bit
    plan_b = build_plan(load_study(study_at(tmp_path / "b")))
    for key in (enc, target):
        assert run_one_stage(plan_b, tmp_path / "b" / "runs", key)["status"] == "ran"
    a = Store(root).stage_dir(target) / ".xstilts-manifest.json"
    b = Store(tmp_path / "b" / "runs").stage_dir(target) / ".xstilts-manifest.json"
    assert _weights(a) == _weights(b)


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _weights(manifest: Path) -> dict[str, str]:
    import json

    files = json.loads(manifest.read_text())["files"]
    return {k: v["sha256"] for k, v in files.items() if k.endswith(".safetensors")}


DEMO = REPO / "examples" / "demo.toml"
DEMO_SMALL = [  # the demo study (both e5-small depths, its three conditions), on fewer examples
    "--set", 'study.languages=["en", "de"]', "--set", 'study.splits=["dev"]',
    "--set", "intermediate.budget_size=16", "--set", "intermediate.max_eval_examples=16",
    "--set", "target.max_train_examples=32", "--set", "target.eval_every=4",
    "--set", "target.max_eval_examples=32", "--set", "evaluation.max_examples_per_file=32",
]  # fmt: skip


@pytest.fixture(scope="module")
def demo_local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo-local") / "runs"
    ran = run_cli("run", str(DEMO), *DEMO_SMALL, "--no-report", XSTILTS_OUTPUT_DIR=str(out))
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-4000:]
    return out


@pytest.mark.slow
def test_ray_runs_the_demo_study(tmp_path: Path, demo_local: Path, ray_cluster: str) -> None:
    out = tmp_path / "runs"
    ran = run_cli("run", str(DEMO), *DEMO_SMALL, "--no-report", "--executor", "ray",
                  "--address", ray_cluster, XSTILTS_OUTPUT_DIR=str(out))  # fmt: skip
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-4000:]
    assert len([e for _k, e, *_ in store_events(out) if e == "done"]) == 18
    assert_same_results(demo_local, out)


@pytest.mark.slow
def test_submitit_runs_the_demo_study(tmp_path: Path, demo_local: Path) -> None:
    pytest.importorskip("submitit")
    out = tmp_path / "runs"
    ran = run_cli("run", str(DEMO), *DEMO_SMALL, "--no-report", "--executor", "slurm",
                  "--slurm-cluster", "local", "--slurm-folder", str(tmp_path / "jobs" / "%j"),
                  XSTILTS_OUTPUT_DIR=str(out))  # fmt: skip
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-4000:]
    assert len([e for _k, e, *_ in store_events(out) if e == "done"]) == 18
    assert_same_results(demo_local, out)
