"""Matplotlib figures for the report, drawn on bare Figure objects (Agg, no pyplot state) and
returned as base64 PNG strings ready for data: URIs."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from xstilts.analysis.schema import GROUP_BREAKDOWN, LANGUAGE_GROUPS
from xstilts.analysis.stats import StudyStats, fmt_size

CATEGORY_COLORS: dict[str, str] = {"none": "#6b6b6b", "syntactic": "#1f63a8", "semantic": "#d2691e"}
CATEGORY_CMAPS: dict[str, str] = {"none": "Greys", "syntactic": "Blues", "semantic": "Oranges"}
LADDER_COLORS = ("#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")


def to_png_base64(fig: Figure, dpi: int = 100) -> str:
    """Render a figure with the Agg canvas and return its PNG bytes as base64 text."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _no_data(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no data: {what}", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _size_axis(ax: Axes, sizes: np.ndarray, label: str) -> None:
    ax.set_xscale("log")
    uniq = np.unique(sizes[np.isfinite(sizes) & (sizes > 0)])
    if len(uniq):
        lo, hi = uniq.min(), uniq.max()
        pad = 1.25 if hi > lo else 2.0
        # labels of rungs close on the log axis (16M and 21.3M on a 1M-21M axis) would overlap:
        # slant them all when two neighbours sit nearer than 1/12 of the axis width
        span = math.log10(hi * pad) - math.log10(lo / pad)
        close = len(uniq) > 1 and np.diff(np.log10(uniq)).min() < span / 12
        ax.set_xticks(uniq)
        ax.set_xticklabels(
            [fmt_size(s) for s in uniq],
            rotation=35 if close else 0,
            ha="right" if close else "center",
        )
        ax.minorticks_off()
        ax.set_xlim(lo / pad, hi * pad)
    ax.set_xlabel(label)


def gap_vs_size(stats: StudyStats, labels: list[str] | None = None) -> str:
    """Gap (semantic − syntactic, pp) against size with CI bands, one line per ladder; one
    panel per label (target first, then en / European / distant). Rungs the slope leaves out
    (incomplete, or at the floor) are drawn hollow."""
    target = stats.target
    wanted = labels or [target, *[g for g in GROUP_BREAKDOWN if g != target]]
    wanted = [lab for lab in wanted if lab in stats.labels]
    n = max(len(wanted), 1)
    ncols = min(n, 2)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(5.4 * ncols, 3.6 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    gaps = stats.gaps
    for ax, label in zip(axes, wanted, strict=False):
        sub = gaps[(gaps["lang"] == label) & gaps["gap"].notna()]
        if sub.empty:
            _no_data(ax, "gap needs both categories")
            continue
        for i, (ladder, g) in enumerate(sub.groupby("ladder", sort=True)):
            g = g.sort_values("size")
            color = LADDER_COLORS[i % len(LADDER_COLORS)]
            x = g["size"].to_numpy()
            y = 100 * g["gap"].to_numpy()
            lo, hi = 100 * g["ci_low"].to_numpy(), 100 * g["ci_high"].to_numpy()
            ax.plot(x, y, "-", color=color, label=ladder)
            inside = g["in_slope"].to_numpy(dtype=bool)
            ax.plot(x[inside], y[inside], "o", color=color)
            ax.plot(x[~inside], y[~inside], "o", color=color, markerfacecolor="white")
            if len(g) > 1:
                ax.fill_between(x, lo, hi, color=color, alpha=0.2, linewidth=0)
            else:
                ax.errorbar(x, y, yerr=[y - lo, hi - y], color=color, capsize=4)
        ax.axhline(0, color="black", linewidth=0.8)
        _size_axis(ax, sub["size"].to_numpy(), stats.config.size_axis)
        ax.set_ylabel("semantic − syntactic (pp)")
        ax.set_title(f"{label} ({stats.config.split})", fontsize=10)
        ax.legend(fontsize=8, loc="best")
    for ax in axes[len(wanted) :]:
        ax.set_visible(False)
    fig.suptitle(f"Gap vs size, {100 * stats.config.ci_level:g}% bootstrap CI bands", fontsize=11)
    fig.tight_layout()
    return to_png_base64(fig)


def accuracy_by_category(stats: StudyStats, label: str | None = None) -> str:
    """Accuracy (%) against size per category (equal-weight task means, CI bands), one panel
    per ladder; multi-task conditions as dashed lines without bands."""
    label = label or stats.target
    cats = stats.categories
    cats = cats[cats["lang"] == label] if not cats.empty else cats
    ladders = sorted(cats["ladder"].unique()) if not cats.empty else []
    n = max(len(ladders), 1)
    fig = Figure(figsize=(5.6 * min(n, 2), 3.8 * math.ceil(n / 2)))
    axes = fig.subplots(math.ceil(n / 2), min(n, 2), squeeze=False).ravel()
    if not ladders:
        _no_data(axes[0], "no category means")
    for ax, ladder in zip(axes, ladders, strict=False):
        sub = cats[cats["ladder"] == ladder]
        for cat, g in sub.groupby("category", sort=False):
            g = g.sort_values("size")
            color = CATEGORY_COLORS.get(str(cat), "black")
            x = g["size"].to_numpy()
            y, lo, hi = (100 * g[c].to_numpy() for c in ("mean", "ci_low", "ci_high"))
            ax.plot(x, y, "o-", color=color, label=f"{cat} ({int(g['n_conditions'].max())})")
            if len(g) > 1:
                ax.fill_between(x, lo, hi, color=color, alpha=0.18, linewidth=0)
            else:
                ax.errorbar(x, y, yerr=[y - lo, hi - y], color=color, capsize=4)
        cells = stats.cells
        multi = cells[(cells["ladder"] == ladder) & (cells["lang"] == label) & cells["multitask"]]
        for cond, g in multi.groupby("condition", sort=True):
            g = g.sort_values("size")
            color = CATEGORY_COLORS.get(str(g["category"].iloc[0]), "black")
            ax.plot(g["size"], 100 * g["mean"], "s--", color=color, alpha=0.8, label=str(cond))
        _size_axis(ax, sub["size"].to_numpy(), stats.config.size_axis)
        ax.set_ylabel(f"accuracy (%), {label}")
        ax.set_title(ladder, fontsize=10)
        ax.legend(fontsize=8, title="category (tasks)", title_fontsize=8)
    for ax in axes[len(ladders) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return to_png_base64(fig)


def language_condition_heatmap(stats: StudyStats, max_panels: int = 12) -> str:
    """Gain over `none` (pp) per language/average × condition, one panel per ladder × rung,
    on one colour scale (accuracy instead where a rung has no `none` control)."""
    cells = stats.cells
    rungs = cells.drop_duplicates(["ladder", "model"]).sort_values(["ladder", "size"])
    rungs = rungs[["ladder", "model", "size"]].to_numpy().tolist()[:max_panels]
    n = max(len(rungs), 1)
    n_cond = max(cells.groupby(["ladder", "model"])["condition"].nunique().max(), 1)
    width = 0.42 * n_cond + 2.6
    ncols = max(1, min(n, int(12.5 // width)))
    nrows = math.ceil(n / ncols)
    height = 0.3 * len(stats.labels) + 1.5
    fig = Figure(figsize=(width * ncols, height * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    gains = 100 * cells["gain"].to_numpy(dtype=float)
    lim = max(float(np.nanmax(np.abs(gains))) if np.isfinite(gains).any() else 0.0, 0.5)
    if not rungs:
        _no_data(axes[0], "no cells")
    for ax, (ladder, model, size) in zip(axes, rungs, strict=False):
        sub = cells[(cells["ladder"] == ladder) & (cells["model"] == model)]
        use_gain = sub["gain"].notna().any()
        sub = sub[sub["category"] != "none"] if use_gain else sub
        value = "gain" if use_gain else "mean"
        order = sub.sort_values(["category", "multitask", "condition"])["condition"].unique()
        grid = sub.pivot_table(index="lang", columns="condition", values=value, aggfunc="first")
        grid = grid.reindex(index=[lab for lab in stats.labels if lab in grid.index], columns=order)
        vals = 100 * grid.to_numpy(dtype=float)
        if vals.size == 0 or not np.isfinite(vals).any():
            _no_data(ax, f"{ladder} {model}")
            continue
        if use_gain:
            im = ax.imshow(vals, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
        else:
            im = ax.imshow(vals, cmap="viridis", aspect="auto")
        for (i, j), v in np.ndenumerate(vals):
            if np.isfinite(v):
                text = f"{v:+.1f}" if use_gain else f"{v:.1f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels(order, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(grid.index)))
        ax.set_yticklabels(grid.index, fontsize=8)
        n_groups = sum(1 for lab in grid.index if lab in LANGUAGE_GROUPS)
        if 0 < n_groups < len(grid.index):
            ax.axhline(len(grid.index) - n_groups - 0.5, color="black", linewidth=1)
        what = "gain over none (pp)" if use_gain else "accuracy (%)"
        ax.set_title(f"{ladder}: {model} ({fmt_size(size)}), {what}", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    for ax in axes[len(rungs) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return to_png_base64(fig)


def task_bars(stats: StudyStats, label: str | None = None) -> str:
    """Per condition: gain over `none` (pp) with CI error bars, one bar per rung (darker =
    larger), coloured by category; one panel per ladder."""
    label = label or stats.target
    cells = stats.cells
    cells = cells[(cells["lang"] == label) & (cells["category"] != "none")]
    ladders = sorted(cells["ladder"].unique()) if not cells.empty else []
    n = max(len(ladders), 1)
    n_cond = max(cells["condition"].nunique(), 1) if not cells.empty else 1
    fig = Figure(figsize=(min(1.0 * n_cond + 3, 11), 3.6 * n))
    axes = fig.subplots(n, 1, squeeze=False).ravel()
    if not ladders:
        _no_data(axes[0], "no intermediate conditions")
    for ax, ladder in zip(axes, ladders, strict=False):
        sub = cells[cells["ladder"] == ladder]
        use_gain = sub["gain"].notna().any()
        col, lo_c, hi_c = (
            ("gain", "gain_ci_low", "gain_ci_high") if use_gain else ("mean", "ci_low", "ci_high")
        )
        conds = sub.sort_values(["category", "multitask", "condition"])["condition"].unique()
        models = sub.sort_values("size")["model"].unique()
        width = 0.8 / len(models)
        for m_i, model in enumerate(models):
            g = sub[sub["model"] == model].set_index("condition").reindex(conds)
            xs = np.arange(len(conds)) + (m_i - (len(models) - 1) / 2) * width
            shade = 0.35 + 0.6 * (m_i + 1) / len(models)
            colors = []
            for cat in g["category"]:
                cmap = CATEGORY_CMAPS.get(str(cat), "Greys")
                colors.append(_cmap(cmap)(shade))
            y = 100 * g[col].to_numpy(dtype=float)
            err = np.vstack([y - 100 * g[lo_c].to_numpy(float), 100 * g[hi_c].to_numpy(float) - y])
            ax.bar(xs, y, width=width, color=colors, edgecolor="black", linewidth=0.3)
            ax.errorbar(
                xs, y, yerr=np.abs(err), fmt="none", ecolor="black", capsize=2, linewidth=0.8
            )
        ax.set_xticks(np.arange(len(conds)))
        ax.set_xticklabels(conds, rotation=30, ha="right", fontsize=8)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_ylabel(("gain over none (pp)" if use_gain else "accuracy (%)") + f", {label}")
        sizes = ", ".join(
            f"{m} ({fmt_size(s)})"
            for m, s in sub.drop_duplicates("model")
            .sort_values("size")[["model", "size"]]
            .to_numpy()
        )
        ax.set_title(f"{ladder}; bars left→right, light→dark: {sizes}", fontsize=9)
        for cat, color in CATEGORY_COLORS.items():
            if cat != "none" and (sub["category"] == cat).any():
                ax.bar([np.nan], [np.nan], color=color, label=cat)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return to_png_base64(fig)


def _cmap(name: str):
    import matplotlib

    return matplotlib.colormaps[name]


def intermediate_vs_baseline(summary: pd.DataFrame) -> str:
    """Intermediate-task dev metric minus its baseline (sign-adjusted so above 0 = beats the
    baseline), per task × metric, one bar per model, error bars = range over seeds."""
    if summary.empty:
        fig = Figure(figsize=(6, 2))
        _no_data(fig.subplots(), "no intermediate metrics")
        return to_png_base64(fig)
    keys = (summary["condition"] + ": " + summary["task"] + " / " + summary["metric"]).to_numpy()
    summary = summary.assign(key=keys)
    order = list(dict.fromkeys(summary.sort_values(["condition", "task", "metric"])["key"]))
    models = list(dict.fromkeys(summary["model"]))
    width = 0.8 / len(models)
    fig = Figure(figsize=(min(0.8 * len(order) + 3, 11), 3.8))
    ax = fig.subplots()
    for m_i, model in enumerate(models):
        g = summary[summary["model"] == model].set_index("key").reindex(order)
        xs = np.arange(len(order)) + (m_i - (len(models) - 1) / 2) * width
        y = g["margin"].to_numpy(float)
        err = np.vstack([y - g["margin_min"].to_numpy(float), g["margin_max"].to_numpy(float) - y])
        color = LADDER_COLORS[m_i % len(LADDER_COLORS)]
        ax.bar(xs, y, width=width, color=color, label=model)
        ax.errorbar(xs, y, yerr=np.abs(err), fmt="none", ecolor="black", capsize=2, linewidth=0.8)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(len(order)))
    ax.set_xticklabels(order, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("metric − baseline (higher = better)")
    ax.set_title("Intermediate-task dev metric over its majority/chance baseline", fontsize=10)
    ax.legend(fontsize=8, ncols=min(len(models), 4))
    fig.tight_layout()
    return to_png_base64(fig)


def pretraining_curves(pretraining: pd.DataFrame) -> str:
    """Held-out MLM loss against tokens seen, one line per pretrained rung, with each rung's
    context-free reference (`unigram_eval_loss`) dashed in the same colour where recorded."""
    evals = pretraining[pretraining["eval_loss"].notna() & (pretraining["tokens"] > 0)]
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.subplots()
    if evals.empty:
        _no_data(ax, "no held-out MLM loss logged")
        return to_png_base64(fig)
    for i, (model, g) in enumerate(evals.groupby("model", sort=False)):
        color = LADDER_COLORS[i % len(LADDER_COLORS)]
        ax.plot(g["tokens"], g["eval_loss"], marker="o", markersize=3, color=color, label=model)
        ref = pd.to_numeric(g["unigram_eval_loss"], errors="coerce").dropna()
        if len(ref):
            ax.axhline(float(ref.iloc[0]), color=color, linestyle="--", linewidth=0.9)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_size(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("held-out MLM loss (nats)")
    ax.set_title("Pretraining; dashed: per-language unigram reference", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return to_png_base64(fig)
