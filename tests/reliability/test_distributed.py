"""Data-parallel training of one stage (`xstilts.distributed`): each process's slice of a batch
and its loss weight give exactly the one-process gradient; a study with
`[resources] train_processes = 2` runs its training stages on 2 CPU processes (gloo) end to end."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from reliability_helpers import run_cli, store_events, write_study
from safetensors.torch import load_file, save_file

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


class _Data:
    """`collate` of a fixed regression-free classification set (the TaskMix interface)."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(10, 6, generator=g)
        self.y = torch.randint(0, 3, (10,), generator=g)

    def collate(self, task: str, idx: list[int], pad_id: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[idx], "labels": self.y[idx]}


class _Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.lin = torch.nn.Linear(6, 3)

    def forward(self, batch: dict[str, torch.Tensor], task: str) -> tuple[torch.Tensor, None]:
        return torch.nn.functional.cross_entropy(self.lin(batch["x"]), batch["labels"]), None


def _grads(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.detach().clone() for p in model.parameters()]


def _worker(rank: int, size: int, init: str, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=size)
    model = torch.nn.parallel.DistributedDataParallel(_Model())
    local, weight = shard(list(range(7)), rank, size)  # an odd batch: unequal slices
    loss = _forward_backward(model, _Data(), "t", local, 1, 1, 0, torch.device("cpu"),
                             torch.autocast("cpu", enabled=False), weight=weight,
                             stop_on_nonfinite=False)  # fmt: skip
    torch.distributed.all_reduce(t := torch.tensor([loss]))
    if rank == 0:
        grads = {f"g{i}": g for i, g in enumerate(_grads(model.module))}
        save_file({**grads, "loss": t / size}, out)
    torch.distributed.destroy_process_group()


@pytest.mark.slow
@pytest.mark.ci
def test_two_processes_give_the_one_process_gradient(tmp_path: Path) -> None:
    single = _Model()
    loss = _forward_backward(single, _Data(), "t", list(range(7)), 1, 1, 0, torch.device("cpu"),
                             torch.autocast("cpu", enabled=False))  # fmt: skip
    out = tmp_path / "ddp.safetensors"
    init = f"file://{tempfile.mktemp(dir=tmp_path)}"
    mp.spawn(_worker, args=(2, init, str(out)), nprocs=2, join=True)
    got = load_file(out)
    for i, b in enumerate(_grads(single)):
        assert torch.allclose(got[f"g{i}"], b, atol=1e-6)
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
