"""The one training loop used by every phase (intermediate tasks and English PAWS-X).
Readable top to bottom: AdamW, linear warm-up/decay, bf16 autocast, gradient accumulation,
evaluation cadence with best-checkpoint selection, and resumable safetensors checkpoints."""

from __future__ import annotations

import copy
import json
import math
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import get_linear_schedule_with_warmup

from xstilts.batching import TaskMix
from xstilts.distributed import all_mean, shard, world
from xstilts.hashing import sha256_file
from xstilts.heads import EncoderWithHead, load_state, save_state
from xstilts.store import atomic_write_json
from xstilts.study import PhaseHParams

Evaluate = Callable[[EncoderWithHead], float]


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; earlier checkpoints are kept."""


class CorruptCheckpointError(RuntimeError):
    """A saved file no longer matches the SHA-256 recorded when it was written."""


CHECKPOINT_FILES = ("model.safetensors", "optimizer.safetensors")


@dataclass
class TrainOutcome:
    steps: int
    examples_seen: int
    train_seconds: float
    final_loss: float
    best_metric: float | None
    best_step: int | None
    history: list[dict[str, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoopState:
    """Where the training loop stands; saved as `state.json`'s "loop" in each checkpoint."""

    step: int = 0  # optimizer steps taken
    micro: int = 0  # micro-batches consumed, over all epochs
    epoch: int = 0
    epoch_start: int = 0  # `micro` at the start of `epoch`
    examples: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0  # training time before this process (a resumed run's earlier part)
    loss: float = float("nan")  # mean loss of the last optimizer step


def pick_device() -> torch.device:
    """The GPU when there is one, else the CPU. On a GPU, SDPA's cuDNN attention backend is
    switched off: on an H200 (torch 2.11, cuDNN 9) it failed with `mha_graph.execute(...)
    .is_good()` when several studies shared the card, while the flash / memory-efficient
    kernels are as fast at these sequence lengths."""
    if torch.cuda.is_available():
        torch.backends.cuda.enable_cudnn_sdp(False)
        return torch.device("cuda")
    return torch.device("cpu")


def total_optimizer_steps(batches_per_epoch: int, hp: PhaseHParams) -> int:
    """Optimizer steps for the phase: `max_steps` if set, else epochs × steps per epoch, where an
    epoch ends with a (possibly shorter) accumulation group."""
    per_epoch = math.ceil(batches_per_epoch / hp.grad_accum)
    if hp.max_steps is not None:
        return hp.max_steps
    return max(1, math.ceil(hp.epochs * per_epoch))


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: weight decay on matrices, none on biases and LayerNorm weights; frozen
    parameters left out."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def make_optimizer(model: torch.nn.Module, hp: PhaseHParams) -> torch.optim.AdamW:
    """AdamW over `parameter_groups`, with the fused kernel where the device has one."""
    groups = parameter_groups(model, hp.weight_decay)
    # The fused kernel (CUDA, and CPU since torch 2.4) updates each parameter in one pass: the same
    # AdamW update as the foreach path, rounded differently in the last bit at most
    # (tests/core/test_speed_correctness.py), without the foreach path's per-op passes and
    # embedding-sized temporaries: on CPU ~4x less optimizer time, ~400 MiB less peak memory.
    try:
        return torch.optim.AdamW(groups, lr=hp.lr, fused=True)
    except RuntimeError:  # a device or dtype the fused kernel does not support
        return torch.optim.AdamW(groups, lr=hp.lr, foreach=True)


def train_model(
    model: EncoderWithHead,
    data: TaskMix,
    hp: PhaseHParams,
    seed: int,
    work_dir: Path,
    *,
    pad_id: int,
    evaluate: Evaluate | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
) -> TrainOutcome:
    """Train `model` in place. With `evaluate`, the best-scoring weights are restored at the end.

    `work_dir/checkpoint/` holds the latest resumable state; `work_dir/best.safetensors` the best
    weights so far. A call that finds a checkpoint continues from it, bit for bit on CPU."""
    device = pick_device()
    model.to(device)
    if hp.freeze_word_embeddings:
        model.encoder.get_input_embeddings().weight.requires_grad_(False)
    rank, size = world()
    net: torch.nn.Module = model
    if size > 1:  # one process of a data-parallel stage (xstilts.distributed)
        net = torch.nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index or 0] if device.type == "cuda" else None,
            find_unused_parameters=True,  # several task heads: a batch uses one of them
        )
    torch.manual_seed(seed)
    optimizer = make_optimizer(model, hp)
    total = total_optimizer_steps(len(data.epoch_batches(hp.batch_size, seed, 0)), hp)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(hp.warmup_ratio * total), total)
    eval_every = hp.eval_every or total
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=hp.precision == "bf16")

    state = LoopState()
    ckpt = work_dir / "checkpoint"
    recover_checkpoint_swap(ckpt)
    best_path = work_dir / "best.safetensors"
    if (ckpt / "state.json").exists():
        problems = _checkpoint_problems(ckpt, best_path)
        if problems:  # never load a file that is not what was written: start this phase again
            warnings.warn(
                f"discarding corrupt checkpoint {ckpt}: {'; '.join(problems)}", stacklevel=2
            )
            shutil.rmtree(ckpt)
            _remove_best(best_path)
        else:
            state = _load_checkpoint(ckpt, model, optimizer, scheduler)

    model.train()
    started = time.perf_counter() - state.seconds
    running = 0.0
    splits = (
        1  # pieces each batch is cut into: doubled on CUDA out-of-memory (same effective batch)
    )
    restart = _snapshot(state)
    while state.step < total:
        epoch, offset = state.epoch, state.micro - state.epoch_start
        batches = data.epoch_batches(hp.batch_size, seed, epoch)
        per_epoch = len(batches)
        for task, indices in batches[offset:]:
            try:
                local, weight = shard(indices, rank, size)
                loss_value = _forward_backward(
                    net, data, task, local, splits, hp.grad_accum, pad_id, device, autocast,
                    weight=weight, stop_on_nonfinite=size == 1,
                )  # fmt: skip
                loss_value = all_mean(loss_value)  # every process sees the same value
            except torch.cuda.OutOfMemoryError:
                if len(indices) < 2 * splits:
                    raise
                splits *= 2
                warnings.warn(
                    f"CUDA out of memory at step {state.step}: retrying from the last optimizer "
                    f"step with per-device batches of ~{math.ceil(hp.batch_size / splits)} and "
                    f"{splits * hp.grad_accum} accumulation steps (same effective batch)",
                    stacklevel=2,
                )
                optimizer.zero_grad(set_to_none=True)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                state, running = copy.deepcopy(restart[0]), 0.0
                torch.set_rng_state(restart[1])
                break
            if not math.isfinite(loss_value):
                raise TrainingDivergedError(
                    f"loss is {loss_value} at step {state.step} (micro-batch {state.micro}); "
                    f"last checkpoint kept in {ckpt}"
                )
            running += loss_value
            state.micro += 1
            state.examples += len(indices)
            pos = state.micro - state.epoch_start
            epoch_end = pos == per_epoch
            if epoch_end:
                state.epoch += 1
                state.epoch_start = state.micro
            elif pos % hp.grad_accum != 0:
                continue
            torch.nn.utils.clip_grad_norm_(model.parameters(), hp.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            state.loss = running / hp.grad_accum
            running = 0.0
            restart = _snapshot(state)
            if on_step is not None:
                on_step(state.step, total, state.loss)
            done = state.step >= total
            if evaluate is not None and (state.step % eval_every == 0 or done):
                metric = evaluate(model)
                model.train()
                state.history.append({"step": state.step, "loss": state.loss, "metric": metric})
                if state.best_metric is None or metric > state.best_metric:
                    state.best_metric, state.best_step = metric, state.step
                    _save_best(model, best_path, state.step)
                restart = _snapshot(state)
            if done or state.step % hp.checkpoint_every == 0:
                state.seconds = time.perf_counter() - started
                _save_checkpoint(ckpt, model, optimizer, scheduler, state)
            if done:
                break
    if evaluate is not None and best_path.exists():
        problems = _best_problems(best_path)
        if problems:
            _remove_best(best_path)
            shutil.rmtree(ckpt, ignore_errors=True)
            raise CorruptCheckpointError(
                f"{best_path}: {'; '.join(problems)}; removed with the checkpoint, so the next "
                "attempt trains this phase again"
            )
        load_state(model, best_path)
    return TrainOutcome(
        steps=state.step,
        examples_seen=state.examples,
        train_seconds=time.perf_counter() - started,
        final_loss=state.loss,
        best_metric=state.best_metric,
        best_step=state.best_step,
        history=state.history,
    )


def _forward_backward(
    model: torch.nn.Module,  # an EncoderWithHead, or DistributedDataParallel around one
    data: TaskMix,
    task: str,
    indices: Any,
    splits: int,
    grad_accum: int,
    pad_id: int,
    device: torch.device,
    autocast: Any,
    *,
    weight: float = 1.0,
    stop_on_nonfinite: bool = True,
) -> float:
    """Forward and backward one batch, in `splits` pieces whose gradients add up to the whole
    batch's (each piece's mean loss weighted by its share of the examples); returns the loss
    times `weight` (a data-parallel process's share, `xstilts.distributed.shard`). In a process
    group a non-finite loss still goes backward, so no process waits for the others in vain."""
    pieces = [indices] if splits == 1 else [p for p in _split(indices, splits) if len(p)]
    total_loss = 0.0
    for piece in pieces:
        batch = {k: v.to(device) for k, v in data.collate(task, piece, pad_id).items()}
        with autocast:
            loss, _ = model(batch, task)
        assert loss is not None
        if stop_on_nonfinite and not torch.isfinite(loss):
            return float(loss.item())
        share = len(piece) / len(indices) if splits > 1 else 1.0
        scaled = loss * (share * weight) if splits > 1 or weight != 1.0 else loss
        (scaled / grad_accum).backward()
        total_loss += loss.item() * share
    return total_loss * weight


def _split(indices: Any, parts: int) -> list[Any]:
    size = math.ceil(len(indices) / parts)
    return [indices[i : i + size] for i in range(0, len(indices), size)]


def _snapshot(state: LoopState) -> tuple[LoopState, torch.Tensor]:
    """The loop state (and RNG) after an optimizer step: where an out-of-memory retry restarts."""
    return copy.deepcopy(state), torch.get_rng_state()


def _save_best(model: torch.nn.Module, best_path: Path, step: int) -> None:
    """The best weights, then a sidecar with their SHA-256 (checked before they are loaded)."""
    save_state(model, best_path)
    atomic_write_json(_best_meta(best_path), {"sha256": sha256_file(best_path), "step": step})


def _best_meta(best_path: Path) -> Path:
    return best_path.with_suffix(".json")


def _remove_best(best_path: Path) -> None:
    best_path.unlink(missing_ok=True)
    _best_meta(best_path).unlink(missing_ok=True)


def _best_problems(best_path: Path) -> list[str]:
    meta = _best_meta(best_path)
    if not best_path.exists():
        return [f"{best_path}: missing"]
    try:
        want = json.loads(meta.read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return [f"{meta}: missing or unreadable checksum"]
    if sha256_file(best_path) != want:
        return [f"{best_path}: SHA-256 differs from the one recorded when written"]
    return []


def _checkpoint_problems(ckpt: Path, best_path: Path) -> list[str]:
    """Why a checkpoint cannot be trusted: unreadable state, or a file (or the best weights it
    relies on) whose SHA-256 is not the one recorded when it was written."""
    try:
        saved = json.loads((ckpt / "state.json").read_text())
        files = saved.get("files", {})
        loop = saved["loop"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return [f"{ckpt / 'state.json'}: unreadable ({exc})"]
    problems = []
    for name in CHECKPOINT_FILES:
        path = ckpt / name
        if not path.exists():
            problems.append(f"{path}: missing")
        elif name in files and sha256_file(path) != files[name]:
            problems.append(f"{path}: SHA-256 differs from the one recorded when written")
    if loop.get("best_step") is not None and "files" in saved:
        problems += _best_problems(best_path)
    return problems


def new_checkpoint_dir(ckpt: Path) -> Path:
    """An empty folder beside `ckpt` to write the next checkpoint into (`swap_in_checkpoint`)."""
    tmp = ckpt.with_name(ckpt.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def swap_in_checkpoint(tmp: Path, ckpt: Path) -> None:
    """Make the complete folder `tmp` the checkpoint `ckpt`; the previous one stays (as
    `<ckpt>.old`) until the new one is in place, so a kill at any point leaves one whole."""
    old = ckpt.with_name(ckpt.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if ckpt.exists():
        ckpt.rename(old)
    tmp.rename(ckpt)
    shutil.rmtree(old, ignore_errors=True)


def recover_checkpoint_swap(ckpt: Path) -> None:
    """After a kill inside `swap_in_checkpoint`: put the previous checkpoint back if the new one
    never arrived, else drop the leftover previous one."""
    old = ckpt.with_name(ckpt.name + ".old")
    if not ckpt.exists() and old.exists():  # killed between the two renames
        old.rename(ckpt)
    elif old.exists():  # killed while deleting the previous checkpoint
        shutil.rmtree(old)


def optimizer_tensors(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """An optimizer's state as (flat CPU tensors for safetensors, JSON-able param groups)."""
    opt_state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for pid, pstate in opt_state["state"].items():
        for name, value in pstate.items():
            tensors[f"{pid}.{name}"] = torch.as_tensor(value).detach().contiguous().cpu()
    groups = [{k: v for k, v in g.items() if k != "params"} | {"params": g["params"]}
              for g in opt_state["param_groups"]]  # fmt: skip
    return tensors, groups


def restore_optimizer(
    optimizer: torch.optim.Optimizer,
    tensors: dict[str, torch.Tensor],
    groups: list[dict[str, Any]],
) -> None:
    """Load what `optimizer_tensors` produced (tensors whose names start with "__" are skipped)."""
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("__"):
            continue
        pid, name = key.split(".", 1)
        per_param.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": groups})


def _save_checkpoint(
    ckpt: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: LoopState,
) -> None:
    """Write model, optimizer and loop state to a temp folder, then swap it in."""
    tmp = new_checkpoint_dir(ckpt)
    save_state(model, tmp / "model.safetensors")
    tensors, groups = optimizer_tensors(optimizer)
    tensors["__torch_rng__"] = torch.get_rng_state()
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    files = {name: sha256_file(tmp / name) for name in CHECKPOINT_FILES}
    atomic_write_json(
        tmp / "state.json",
        {"loop": asdict(state), "param_groups": groups, "scheduler": scheduler.state_dict(),
         "files": files},
    )  # fmt: skip
    swap_in_checkpoint(tmp, ckpt)


def _load_checkpoint(
    ckpt: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any
) -> LoopState:
    saved = json.loads((ckpt / "state.json").read_text())
    load_state(model, ckpt / "model.safetensors")
    tensors = load_file(str(ckpt / "optimizer.safetensors"))
    torch.set_rng_state(tensors.pop("__torch_rng__"))
    restore_optimizer(optimizer, tensors, saved["param_groups"])
    scheduler.load_state_dict(saved["scheduler"])
    return LoopState(**saved["loop"])
