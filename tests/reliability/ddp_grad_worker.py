"""Run by `python -m torch.distributed.run --nproc_per_node 2 ddp_grad_worker.py OUT` from
test_distributed.py: one DDP step of `_forward_backward` on an odd-sized batch; rank 0 saves the
gradient and the process-averaged loss (safetensors) for comparison with one process."""

from __future__ import annotations

import os
import sys

import torch
from safetensors.torch import save_file

from xstilts.distributed import shard
from xstilts.train import _forward_backward

BATCH = list(range(7))


class Data:
    """`collate` of a fixed small classification set (the TaskMix interface)."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(10, 6, generator=g)
        self.y = torch.randint(0, 3, (10,), generator=g)

    def collate(self, task: str, idx: list[int], pad_id: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[idx], "labels": self.y[idx]}


class Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.lin = torch.nn.Linear(6, 3)

    def forward(self, batch: dict[str, torch.Tensor], task: str) -> tuple[torch.Tensor, None]:
        return torch.nn.functional.cross_entropy(self.lin(batch["x"]), batch["labels"]), None


def grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"g{i}": p.grad.detach().clone() for i, p in enumerate(model.parameters())}


def main(out: str) -> None:
    torch.distributed.init_process_group("gloo")
    rank, size = torch.distributed.get_rank(), torch.distributed.get_world_size()
    model = torch.nn.parallel.DistributedDataParallel(Model())
    local, weight = shard(BATCH, rank, size)  # unequal slices: 4 and 3 examples
    loss = _forward_backward(model, Data(), "t", local, 1, 1, 0, torch.device("cpu"),
                             torch.autocast("cpu", enabled=False), weight=weight,
                             stop_on_nonfinite=False)  # fmt: skip
    total = torch.tensor([loss])
    torch.distributed.all_reduce(total)
    if rank == 0:
        save_file({**grads(model.module), "loss": total / size}, out)
    # The order xstilts.distributed keeps: DDP (its reducer holds the group) freed while the group
    # lives, then every process at a barrier, then the group destroyed. With the DDP object still
    # alive at destroy_process_group and no barrier, a worker hung in DDP's destructor when
    # main() returned (py-spy: main thread idle in the call to main, about 1 run in 3).
    del model
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
    # Leave without interpreter shutdown, where a gloo thread has also been seen to keep a
    # finished worker from exiting.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
