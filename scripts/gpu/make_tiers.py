#!/usr/bin/env python
"""Write the run lists (`TIERS=FILE` of `scripts/gpu/run_study.sh`) for the runs of a study that
are not finished yet, in priority groups, so a time-capped GPU call spends its minutes on what
matters most and never repeats a run another call already made.

    python scripts/gpu/make_tiers.py studies/pawsx-scaling.toml \\
        --done docs/results/pawsx-scaling/results.csv \\
        --tier scratch 'scratch-*__none__*' 'scratch-*__ud_upos__*' 'scratch-*__nli__*' \\
        --tier e5 'e5-small-L3__*' 'e5-small-L6__*' \\
        --rest all > tiers.txt

Each run goes to the first `--tier` whose globs match its id (`model__condition__sSEED`);
`--rest GROUP` collects the runs no tier matched (without it they are left out). Runs whose id
appears in any `--done` results file are skipped. Within a line, runs are in the study's
seed-major order (all cells of seed 1 first), so a call that stops early leaves whole seeds.

`--check GROUP GLOB KEY=VALUE [KEY=VALUE ...]` puts, before everything else of GROUP, one line per
setting that trains the matching runs' target phase with that study override (`--stages
encoder,target`: English dev accuracy only, in the target stage's summary; no evaluation, no
result row; read back with target_summaries.py), e.g. whether a from-scratch rung's `none` control
learns PAWS at another learning rate, or a shallow rung with more epochs, before runs are spent:

    --check scratch 'scratch-[48]m__none__s1' target.lr=3e-4 target.lr=1e-3
    --check e5 'e5-small-L6__none__s1' target.epochs=10
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from pathlib import Path

import pandas as pd

from xstilts.plan import run_identifier
from xstilts.study import Study, load_study


def run_ids(study: Study) -> list[str]:
    """Every run id of the study, seed-major."""
    return [
        run_identifier(m.name, c.name, seed)
        for seed in study.study.seeds
        for m in study.models
        for c in study.conditions
    ]


def make_tiers(
    ids: list[str], done: set[str], tiers: list[list[str]], rest: str | None
) -> list[tuple[str, list[str]]]:
    """(group, run ids) lines: each pending id in the first tier whose globs match it."""
    lines: list[tuple[str, list[str]]] = [(t[0], []) for t in tiers]
    leftover: list[str] = []
    for rid in ids:
        if rid in done:
            continue
        for i, (_, *globs) in enumerate(tiers):
            if any(fnmatch.fnmatchcase(rid, g) for g in globs):
                lines[i][1].append(rid)
                break
        else:
            leftover.append(rid)
    if rest is not None:
        lines.append((rest, leftover))
    return [(group, members) for group, members in lines if members]


def rung_settings(study: Study) -> dict[str, set[str]]:
    """{rung name: the dotted keys it sets itself}, e.g. {"e5-small": {"target.lr"}}."""
    return {
        m.name: {f"target.{k}" for k in m.target} | {f"intermediate.{k}" for k in m.intermediate}
        for m in study.models
    }


def check_lines(
    ids: list[str], checks: list[list[str]], own: dict[str, set[str]] | None = None
) -> list[tuple[str, list[str]]]:
    """(group, run ids + ["--", extra args]) lines of the `--check GROUP GLOB KEY=VALUE...`
    options: one target-phase-only line per setting. A check is a study-wide `--set`, which a
    rung's own setting of the same key overrides (`own`: `rung_settings`), so such a check
    would silently train that rung's usual stage: refused, with the override to use instead."""
    lines: list[tuple[str, list[str]]] = []
    for group, glob, *settings in checks:
        members = [rid for rid in ids if fnmatch.fnmatchcase(rid, glob)]
        if not members:
            raise SystemExit(f"--check {group} {glob}: no run of the study matches {glob!r}")
        for setting in settings:
            key, sep, value = setting.partition("=")
            if not sep or not key or not value or " " in setting:
                raise SystemExit(f"--check {group} {glob}: {setting!r} is not KEY=VALUE")
            setters = sorted({r.split("__")[0] for r in members} & {
                rung for rung, keys in (own or {}).items() if key in keys
            })  # fmt: skip
            if setters:
                raise SystemExit(
                    f"--check {group} {glob}: {', '.join(setters)} set(s) {key} in the study "
                    f"file, which a study-wide {setting} does not change; leave the rung out of "
                    f"the glob or check it with --set models.{setters[0]}.{key}={value}"
                )
            extra = ["--", "--stages", "encoder,target", "--set", setting]
            lines.append((group, members + extra))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--done", type=Path, action="append", default=[], help="results.csv")
    parser.add_argument(
        "--tier", nargs="+", action="append", default=[], metavar="GROUP GLOB", help="group, globs"
    )
    parser.add_argument("--rest", default=None, help="group for runs no tier matched")
    parser.add_argument(
        "--check", nargs="+", action="append", default=[], metavar="GROUP GLOB KEY=VALUE",
        help="group, run glob, overrides: target-phase-only lines run first in GROUP",
    )  # fmt: skip
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    if any(len(t) < 2 for t in args.tier):
        parser.error("--tier needs a group name and at least one glob")
    if any(len(c) < 3 for c in args.check):
        parser.error("--check needs a group, a run glob and at least one KEY=VALUE")
    done: set[str] = set()
    for path in args.done:
        done |= set(pd.read_csv(path, usecols=["run_id"])["run_id"])
    study = load_study(args.study, args.overrides)
    ids = run_ids(study)
    lines = make_tiers(ids, done, args.tier, args.rest)
    pending = sum(len(m) for _, m in lines)
    print(f"# {pending} of {len(ids)} runs ({len(done & set(ids))} done); see make_tiers.py")
    for group, members in check_lines(ids, args.check, rung_settings(study)) + lines:
        print(group, " ".join(members))
    print(f"{pending} runs in {len(lines)} lines", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
