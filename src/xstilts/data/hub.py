"""Hugging Face hub ids of every task's data, and one loader for users with internet access.
`datasets` is an optional dependency (extra `hub`), imported only when a download is asked for."""

from __future__ import annotations

import difflib
import importlib
from typing import Any, NamedTuple


class HubDataset(NamedTuple):
    """A hub dataset: `path` for `datasets.load_dataset`, and its config `name` (None if none)."""

    path: str
    name: str | None = None


PAWSX_LANGUAGES = ("en", "de", "es", "fr", "ja", "ko", "zh")
XNLI_LANGUAGES = (
    "ar",
    "bg",
    "de",
    "el",
    "en",
    "es",
    "fr",
    "hi",
    "ru",
    "sw",
    "th",
    "tr",
    "ur",
    "vi",
    "zh",
)
_GLUE_CONFIGS = ("cola", "mrpc", "sst2", "qqp", "mnli", "rte", "qnli", "stsb")

# Split names are the hub's own: "validation" (GLUE mnli: "validation_matched"/"_mismatched"),
# ANLI "train_r1" ... "test_r3". `dream` and `universal_dependencies` are script datasets: with
# datasets >= 4 pass revision="refs/convert/parquet" (or trust_remote_code=True on datasets < 4).
HF_DATASET_IDS: dict[str, HubDataset] = {
    **{config: HubDataset("nyu-mll/glue", config) for config in _GLUE_CONFIGS},
    "anli": HubDataset("facebook/anli"),
    "snli": HubDataset("stanfordnlp/snli"),
    "cosmosqa": HubDataset("allenai/cosmos_qa"),
    "hellaswag": HubDataset("Rowan/hellaswag"),
    "commonsenseqa": HubDataset("tau/commonsense_qa"),
    "squad": HubDataset("rajpurkar/squad"),
    "squad_v2": HubDataset("rajpurkar/squad_v2"),
    "dream": HubDataset("dataset-org/dream"),
    "paws_wiki": HubDataset("google-research-datasets/paws", "labeled_final"),
    **{
        f"pawsx_{lang}": HubDataset("google-research-datasets/paws-x", lang)
        for lang in PAWSX_LANGUAGES
    },
    **{f"xnli_{lang}": HubDataset("facebook/xnli", lang) for lang in XNLI_LANGUAGES},
    "ud_en_ewt": HubDataset("universal-dependencies/universal_dependencies", "en_ewt"),
    "ud_en_gum": HubDataset("universal-dependencies/universal_dependencies", "en_gum"),
}


def hub_dataset(task_name: str) -> HubDataset:
    """The hub id of `task_name`; an unknown name raises KeyError with the closest known ones."""
    if task_name in HF_DATASET_IDS:
        return HF_DATASET_IDS[task_name]
    close = difflib.get_close_matches(task_name, list(HF_DATASET_IDS), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {sorted(HF_DATASET_IDS)}"
    raise KeyError(f"no hub dataset for task {task_name!r}{hint}")


def load_hub_dataset(task_name: str, split: str, **load_kwargs: Any) -> Any:
    """Download (or reuse the cache of) one split of `task_name` with `datasets.load_dataset`.

    `split` is passed unchanged, in the hub's naming; `load_kwargs` (cache_dir, revision, ...)
    go to load_dataset. Raises ImportError naming the `hub` extra when `datasets` is missing."""
    source = hub_dataset(task_name)
    try:
        datasets = importlib.import_module("datasets")
    except ImportError as err:
        raise ImportError(
            f"loading {task_name!r} from the Hugging Face hub needs the optional `datasets` "
            "package: pip install 'xstilts[hub]' (or pip install datasets)"
        ) from err
    return datasets.load_dataset(source.path, source.name, split=split, **load_kwargs)
