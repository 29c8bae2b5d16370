"""Statistics and reporting for xstilts: hierarchical-bootstrap gaps, slopes against size,
collapse detection, and a self-contained HTML/Markdown report."""

from __future__ import annotations

from typing import Any

from xstilts.analysis.collapse import (
    CollapseConfig,
    collapse_rate,
    detect_collapse,
    exclude_collapsed,
    with_and_without,
)
from xstilts.analysis.loaders import StudyTables, load_study
from xstilts.analysis.schema import LANGUAGE_GROUPS, LANGUAGES
from xstilts.analysis.stats import (
    AnalysisConfig,
    LadderVerdict,
    RegressionResult,
    StudyStats,
    accuracy_consistency,
    analyze,
    fit_interaction,
)

__all__ = [
    "LANGUAGES",
    "LANGUAGE_GROUPS",
    "AnalysisConfig",
    "CollapseConfig",
    "LadderVerdict",
    "RegressionResult",
    "ReportPaths",
    "StudyStats",
    "StudyTables",
    "accuracy_consistency",
    "analyze",
    "build_report",
    "collapse_rate",
    "detect_collapse",
    "exclude_collapsed",
    "fit_interaction",
    "load_study",
    "with_and_without",
]


def __getattr__(name: str) -> Any:
    # The report pulls in matplotlib; import it only when asked for.
    if name in ("build_report", "ReportPaths"):
        from xstilts.analysis import report

        return getattr(report, name)
    raise AttributeError(name)
