"""Data-parallel training of one stage (`xstilts.distributed`): each process's slice of a batch
and its loss weight give exactly the one-process gradient; a study with
`[resources] train_processes = 2` runs its training stages on 2 CPU processes (gloo) end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from reliability_helpers import cli_env, run_cli, store_events, write_study
from safetensors.torch import load_file

from xstilts.distributed import shard
from xstilts.train import _forward_backward


def test_slices_and_weights_make_the_batch_mean() -> None:
    losses = torch.arange(7, dtype=torch.float64)  # per-example losses of a 7-example batch
    indices = list(range(7))
    for size in (1, 2, 3, 8):
        parts = [shard(indices, r, size) for r in range(size)]
        assert sorted(i for p, w in parts if w for i in p) == indices  # each example once
        ddp = sum(losses[p].mean() * w for p, w in parts) / size  # what DDP's averaging gives
        assert torch.isclose(ddp, losses.mean())


@pytest.mark.slow
@pytest.mark.ci
def test_two_processes_give_the_one_process_gradient(tmp_path: Path) -> None:
    """Two gloo processes started as `accelerate launch --multi_gpu` starts them (torchrun),
    in a fresh interpreter so nothing of this test process leaks into them."""
    from ddp_grad_worker import BATCH, Data, Model, grads

    single = Model()
    loss = _forward_backward(single, Data(), "t", BATCH, 1, 1, 0, torch.device("cpu"),
                             torch.autocast("cpu", enabled=False))  # fmt: skip
    out = tmp_path / "ddp.safetensors"
    worker = Path(__file__).with_name("ddp_grad_worker.py")
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(worker), str(out)],
        env=cli_env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    got = load_file(out)
    for name, want in grads(single).items():
        assert torch.allclose(got[name], want, atol=1e-6), name
    assert abs(got["loss"].item() - loss) < 1e-6


@pytest.mark.slow
@pytest.mark.ci
def test_study_trains_on_two_processes(
    tmp_path: Path, shared_data: Path, tiny_encoder: Path
) -> None:
    study = write_study(tmp_path / "s.toml", tmp_path / "runs", shared_data, encoder=tiny_encoder,
                        seeds="[3]", extra="\n[resources]\ntrain_processes = 2\n")  # fmt: skip
    ran = run_cli("run", str(study), "--no-report", OMP_NUM_THREADS="1")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    trained = []
    for kind in ("intermediate", "target"):
        for folder in (tmp_path / "runs" / "stages" / kind).iterdir():
            summary = json.loads((folder / "summary.json").read_text())
            assert summary["processes"] == 2
            trained.append(folder.name)
    assert len(trained) == 3  # xnli_en intermediate; none and xnli_en targets
    assert not list((tmp_path / "runs" / "work").glob("*/ddp/rank*"))  # other ranks' copies gone
    done = [e for key, e, *_ in store_events(tmp_path / "runs") if e == "done"]
    assert len(done) == 6 and os.path.exists(tmp_path / "runs" / "results.csv")
