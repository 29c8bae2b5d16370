"""The one training loop used by every phase (intermediate tasks and English PAWS-X).
Readable top to bottom: AdamW, linear warm-up/decay, bf16 autocast, gradient accumulation,
evaluation cadence with best-checkpoint selection, and resumable safetensors checkpoints."""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import get_linear_schedule_with_warmup

from xstilts.batching import TaskMix
from xstilts.heads import EncoderWithHead, load_state, save_state
from xstilts.store import atomic_write_json
from xstilts.study import PhaseHParams

Evaluate = Callable[[EncoderWithHead], float]


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; earlier checkpoints are kept."""


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


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def total_optimizer_steps(batches_per_epoch: int, hp: PhaseHParams) -> int:
    """Optimizer steps for the phase: `max_steps` if set, else epochs × steps per epoch, where an
    epoch ends with a (possibly shorter) accumulation group."""
    per_epoch = math.ceil(batches_per_epoch / hp.grad_accum)
    if hp.max_steps is not None:
        return hp.max_steps
    return max(1, math.ceil(hp.epochs * per_epoch))


def make_optimizer(model: torch.nn.Module, hp: PhaseHParams) -> torch.optim.AdamW:
    """AdamW without weight decay on biases and LayerNorm weights; frozen parameters left out."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": hp.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    fused = torch.cuda.is_available()
    return torch.optim.AdamW(groups, lr=hp.lr, fused=fused, foreach=not fused)


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
    torch.manual_seed(seed)
    optimizer = make_optimizer(model, hp)
    total = total_optimizer_steps(len(data.epoch_batches(hp.batch_size, seed, 0)), hp)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(hp.warmup_ratio * total), total)
    eval_every = hp.eval_every or total
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=hp.precision == "bf16")

    state = {"step": 0, "micro": 0, "epoch": 0, "epoch_start": 0, "examples": 0,
             "best_metric": None, "best_step": None, "history": [], "seconds": 0.0,
             "loss": float("nan")}  # fmt: skip
    ckpt = work_dir / "checkpoint"
    old = ckpt.with_name(ckpt.name + ".old")
    if not ckpt.exists() and old.exists():  # killed between the two renames of a checkpoint swap
        old.rename(ckpt)
    if (ckpt / "state.json").exists():
        state = _load_checkpoint(ckpt, model, optimizer, scheduler)
    best_path = work_dir / "best.safetensors"

    model.train()
    started = time.perf_counter() - state["seconds"]
    running = 0.0
    while state["step"] < total:
        epoch, offset = state["epoch"], state["micro"] - state["epoch_start"]
        batches = data.epoch_batches(hp.batch_size, seed, epoch)
        per_epoch = len(batches)
        for task, indices in batches[offset:]:
            batch = {k: v.to(device) for k, v in data.collate(task, indices, pad_id).items()}
            with autocast:
                loss, _ = model(batch, task)
            assert loss is not None
            if not torch.isfinite(loss):
                raise TrainingDivergedError(
                    f"loss is {loss.item()} at step {state['step']} (micro-batch {state['micro']}); "
                    f"last checkpoint kept in {ckpt}"
                )
            (loss / hp.grad_accum).backward()
            running += loss.item()
            state["micro"] += 1
            state["examples"] += len(indices)
            pos = state["micro"] - state["epoch_start"]
            epoch_end = pos == per_epoch
            if epoch_end:
                state["epoch"] += 1
                state["epoch_start"] = state["micro"]
            elif pos % hp.grad_accum != 0:
                continue
            torch.nn.utils.clip_grad_norm_(model.parameters(), hp.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            state["loss"] = running / hp.grad_accum
            running = 0.0
            if on_step is not None:
                on_step(state["step"], total, state["loss"])
            done = state["step"] >= total
            if evaluate is not None and (state["step"] % eval_every == 0 or done):
                metric = evaluate(model)
                model.train()
                state["history"].append(
                    {"step": state["step"], "loss": state["loss"], "metric": metric}
                )
                if state["best_metric"] is None or metric > state["best_metric"]:
                    state["best_metric"], state["best_step"] = metric, state["step"]
                    save_state(model, best_path)
            if done or state["step"] % hp.checkpoint_every == 0:
                state["seconds"] = time.perf_counter() - started
                _save_checkpoint(ckpt, model, optimizer, scheduler, state)
            if done:
                break
    if evaluate is not None and best_path.exists():
        load_state(model, best_path)
    return TrainOutcome(
        steps=state["step"],
        examples_seen=state["examples"],
        train_seconds=time.perf_counter() - started,
        final_loss=state["loss"],
        best_metric=state["best_metric"],
        best_step=state["best_step"],
        history=state["history"],
    )


def _save_checkpoint(
    ckpt: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: dict[str, Any],
) -> None:
    """Write model, optimizer and loop state to a temp folder, then swap it in."""
    tmp = ckpt.with_name(ckpt.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_state(model, tmp / "model.safetensors")
    opt_state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for pid, pstate in opt_state["state"].items():
        for name, value in pstate.items():
            tensors[f"{pid}.{name}"] = torch.as_tensor(value).detach().contiguous().cpu()
    tensors["__torch_rng__"] = torch.get_rng_state()
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    groups = [{k: v for k, v in g.items() if k != "params"} | {"params": g["params"]}
              for g in opt_state["param_groups"]]  # fmt: skip
    atomic_write_json(
        tmp / "state.json",
        {"loop": state, "param_groups": groups, "scheduler": scheduler.state_dict()},
    )
    old = ckpt.with_name(ckpt.name + ".old")
    if ckpt.exists():
        ckpt.rename(old)
    tmp.rename(ckpt)
    if old.exists():
        shutil.rmtree(old)


def _load_checkpoint(
    ckpt: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any
) -> dict[str, Any]:
    saved = json.loads((ckpt / "state.json").read_text())
    load_state(model, ckpt / "model.safetensors")
    tensors = load_file(str(ckpt / "optimizer.safetensors"))
    torch.set_rng_state(tensors.pop("__torch_rng__"))
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        pid, name = key.split(".", 1)
        per_param.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": saved["param_groups"]})
    scheduler.load_state_dict(saved["scheduler"])
    return saved["loop"]
