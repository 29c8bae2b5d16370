#!/usr/bin/env python
"""What a ladder design can detect, before its runs are spent: simulate the study many times with a
planted change of the semantic − syntactic gap per decade of size, analyse each simulation
exactly as the report does (hierarchical bootstrap, verdict rule), and count.

    python scripts/design_power.py --sizes 21.3e6 86e6 302e6 --effects 0 1 2 4 --sims 40

For each planted slope (pp of gap per 10× non-embedding parameters): the share of simulations
whose slope CI excludes 0 (a change of the gap is found), the shares of the report's verdicts
("amplifies" also needs the gap's sign over the ladder resolved, so a small gap `--gap` that a
slope carries across 0 reads "inconclusive"), the median estimated slope and the median
half-width of its CI. The noise defaults are measured on the published GPU runs
(docs/results/pawsx-scaling/, e5-small L9/L12, runs that learned PAWS): seed SD 0.7 pp of
zero-shot average accuracy per run, task SD 0.5 pp; `--task-rung-sd` adds a task × rung
interaction (a task that helps more at one size), which the published runs cannot tell from seed
noise. The verdict's CI (seeds and examples resampled) is conditional on the tasks chosen, so
with such an interaction it finds trends that are these tasks' own; the columns "tasks
resampled" give the report's second CI, which resamples the tasks too and speaks for tasks like
them ("CI covers" counts the planted, population-level slope). What it does not model: runs that
collapse (the UD tasks at L9/L12), which move a gap by 10 pp or more; the report leaves floor
rungs out and says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np
import pandas as pd

from xstilts.analysis.schema import LANGUAGES
from xstilts.analysis.simulate import simulate_study
from xstilts.analysis.stats import AnalysisConfig, analyze


def simulate_power(
    sizes: tuple[float, ...],
    effects: list[float],
    *,
    sims: int,
    seeds: int = 3,
    n_syntactic: int = 3,
    n_semantic: int = 3,
    gap: float = 0.01,
    seed_sd: float = 0.007,
    task_sd: float = 0.005,
    task_rung_sd: float = 0.0,
    n_test: int = 2000,
    n_dev: int = 200,
    n_boot: int = 300,
    rng_seed: int = 0,
) -> pd.DataFrame:
    """One row per planted slope (fractions; `effects` too): power and CI width over `sims`
    simulated studies, each analysed on "avg excl. en" of the test split."""
    cfg = AnalysisConfig(n_boot=n_boot, regression=False)
    rows = []
    for e, effect in enumerate(effects):
        verdicts, slopes, half_widths, covered, found = [], [], [], [], []
        covered_t, found_t, half_t = [], [], []
        for k in range(sims):
            sim = simulate_study(
                sizes=sizes,
                n_syntactic=n_syntactic,
                n_semantic=n_semantic,
                n_seeds=seeds,
                langs=LANGUAGES,
                n_test=n_test,
                n_dev=n_dev,
                gap=gap,
                gap_slope=effect,
                task_sd=task_sd,
                seed_sd=seed_sd,
                task_rung_sd=task_rung_sd,
                rng_seed=rng_seed + 1000 * e + k,
            )
            v = analyze(sim.results, sim.predictions, dataclasses.replace(cfg, seed=k)).headline()[
                0
            ]
            verdicts.append(v.verdict)
            slopes.append(v.slope)
            half_widths.append((v.slope_ci[1] - v.slope_ci[0]) / 2)
            covered.append(v.slope_ci[0] <= effect <= v.slope_ci[1])
            found.append(v.slope_ci[0] > 0 or v.slope_ci[1] < 0)
            lo_t, hi_t = v.slope_ci_tasks  # tasks resampled too: the report's second CI
            covered_t.append(lo_t <= effect <= hi_t)
            found_t.append(lo_t > 0 or hi_t < 0)
            half_t.append((hi_t - lo_t) / 2)
        rows.append(
            {
                "planted slope (pp/decade)": 100 * effect,
                "slope CI excludes 0": float(np.mean(found)),
                "amplifies": float(np.mean([x == "amplifies" for x in verdicts])),
                "diminishes": float(np.mean([x == "diminishes" for x in verdicts])),
                "inconclusive": float(np.mean([x == "inconclusive" for x in verdicts])),
                "median slope (pp/decade)": 100 * float(np.median(slopes)),
                "median CI half-width (pp/decade)": 100 * float(np.median(half_widths)),
                "CI covers the planted slope": float(np.mean(covered)),
                "tasks resampled: CI excludes 0": float(np.mean(found_t)),
                "tasks resampled: median half-width": 100 * float(np.median(half_t)),
                "tasks resampled: covers": float(np.mean(covered_t)),
                "sims": sims,
            }
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        description=doc.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=float, nargs="+", required=True,
                        help="non-embedding parameters of each rung")  # fmt: skip
    parser.add_argument("--effects", type=float, nargs="+", default=[0.0, 1.0, 2.0, 4.0],
                        help="planted slopes, pp of gap per decade")  # fmt: skip
    parser.add_argument("--sims", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tasks", type=int, nargs=2, default=[3, 3], metavar=("SYN", "SEM"))
    parser.add_argument("--gap", type=float, default=1.0, help="gap at the mean size, pp")
    parser.add_argument("--seed-sd", type=float, default=0.7, help="pp")
    parser.add_argument("--task-sd", type=float, default=0.5, help="pp")
    parser.add_argument("--task-rung-sd", type=float, default=0.0, help="pp")
    parser.add_argument("--n-test", type=int, default=2000, help="test examples per language")
    parser.add_argument("--n-boot", type=int, default=300)
    parser.add_argument("--csv", default=None, help="also write the table here")
    args = parser.parse_args(argv)
    if len(args.sizes) < 2:
        parser.error("--sizes needs at least two rungs")
    started = time.perf_counter()
    table = simulate_power(
        tuple(args.sizes),
        [x / 100 for x in args.effects],
        sims=args.sims,
        seeds=args.seeds,
        n_syntactic=args.tasks[0],
        n_semantic=args.tasks[1],
        gap=args.gap / 100,
        seed_sd=args.seed_sd / 100,
        task_sd=args.task_sd / 100,
        task_rung_sd=args.task_rung_sd / 100,
        n_test=args.n_test,
        n_boot=args.n_boot,
    )
    span = np.log10(max(args.sizes) / min(args.sizes))
    print(
        f"# {len(args.sizes)} rungs over {span:.2f} decades, {args.seeds} seeds, "
        f"{args.tasks[0]}+{args.tasks[1]} tasks; seed SD {args.seed_sd} pp, task SD "
        f"{args.task_sd} pp, task×rung SD {args.task_rung_sd} pp; {args.sims} simulations per "
        f"slope, B = {args.n_boot}; {time.perf_counter() - started:.0f} s"
    )
    print(table.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
