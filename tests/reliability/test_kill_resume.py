"""Kill and resume: `xstilts run` SIGKILLed at seeded random moments, restarted, at least ten
times; the final results and predictions equal those of one uninterrupted run, no row lost or
duplicated, every stage completed exactly once."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from reliability_helpers import (
    assert_same_results,
    kill_group,
    run_cli,
    start_cli,
    store_events,
    work_seconds,
    write_study,
)

KILLS = 10


def _running(out: Path) -> list[str]:
    try:
        con = sqlite3.connect(out / "store.sqlite", timeout=5)
        try:
            rows = con.execute("SELECT key FROM stages WHERE status = 'running'").fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return ["?"]
    return [r[0].split("-")[0] for r in rows]


@pytest.mark.slow
@pytest.mark.ci
def test_sigkill_and_restart_gives_the_uninterrupted_results(
    tmp_path: Path, shared_data: Path, tiny_encoder: Path, baseline: Path
) -> None:
    out = tmp_path / "runs"
    study = write_study(tmp_path / "study.toml", out, shared_data, encoder=tiny_encoder)
    rng = random.Random(20240611)
    log = tmp_path / "runs.log"
    kills: list[tuple[float, list[str]]] = []
    finished_early = 0
    started = time.monotonic()
    # The lease is long: a restarted run takes the dead process's stage over because its holder
    # (same host) is gone, not because the lease expired.
    window = 0.4 * work_seconds(baseline)  # a kill lands within the next ~40% of the work
    while len(kills) < KILLS:
        assert finished_early < 20, "the runs keep ending before the kill"
        seen, size = len(store_events(out)), log.stat().st_size if log.exists() else 0
        proc = start_cli("run", str(study), log=log, XSTILTS_LEASE_SECONDS="600")
        # imports take seconds: the clock starts when this process claims its first stage (or,
        # once every stage is done, when it has read the plan: then it collects the results)
        while (
            proc.poll() is None
            and len(store_events(out)) <= seen
            and b" 0 to run)" not in log.read_bytes()[size:]
        ):
            time.sleep(0.01)
        delay = rng.uniform(0.02, window)
        try:
            proc.wait(timeout=delay)
            finished_early += 1
            assert proc.returncode == 0, log.read_text()[-3000:]
        except subprocess.TimeoutExpired:
            where = _running(out)
            kill_group(proc)
            kills.append((round(delay, 2), where))
    final = run_cli("run", str(study), XSTILTS_LEASE_SECONDS="600")
    assert final.returncode == 0, final.stdout + final.stderr
    elapsed = time.monotonic() - started
    print(f"{len(kills)} kills ({finished_early} runs ended first) in {elapsed:.0f}s: {kills}")

    assert_same_results(baseline, out)
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 4 * 2 * 2  # runs x languages x splits

    con = sqlite3.connect(out / "store.sqlite")
    done = dict(con.execute("SELECT key, COUNT(*) FROM events WHERE event='done' GROUP BY key"))
    status = dict(con.execute("SELECT key, status FROM stages"))
    stored = con.execute("SELECT COUNT(*), COUNT(DISTINCT run_id || lang || split) FROM results")
    n_rows, n_distinct = stored.fetchone()
    con.close()
    assert set(status.values()) == {"done"} and len(status) == 11
    assert done == dict.fromkeys(status, 1), done  # every stage completed exactly once
    assert n_rows == n_distinct == 16
    assert not list(out.glob("work/*/out")), "no scratch output left behind"
