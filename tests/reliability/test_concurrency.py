"""Four `xstilts run` workers on one store run one study: every stage runs exactly once, busy
stages are waited for (not reported blocked), and a worker SIGKILLed mid-stage has its stage
taken over when its lease expires. Each worker poses as its own host (XSTILTS_WORKER_HOST), as
on a cluster, so only the lease expiry can tell that the killed one is gone."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from reliability_helpers import (
    assert_same_results,
    kill_group,
    start_cli,
    store_events,
    write_study,
)

WORKERS = 4
LEASE = 4.0


@pytest.mark.slow
@pytest.mark.ci
def test_four_workers_one_store_each_stage_once_and_lease_takeover(
    tmp_path: Path, shared_data: Path, tiny_encoder: Path, baseline: Path
) -> None:
    out = tmp_path / "runs"
    study = write_study(tmp_path / "study.toml", out, shared_data, encoder=tiny_encoder)
    env = {"XSTILTS_LEASE_SECONDS": str(LEASE), "XSTILTS_POLL_SECONDS": "0.25"}
    procs = [
        start_cli(
            "run", str(study), log=tmp_path / f"w{i}.log", XSTILTS_WORKER_HOST=f"node{i}", **env
        )
        for i in range(WORKERS)
    ]
    # kill whichever worker is first seen training (an intermediate or target stage)
    victim = victim_key = None
    deadline = time.monotonic() + 300
    while victim is None and time.monotonic() < deadline:
        for key, event, worker, _at in store_events(out):
            if event == "claim" and key.split("-")[0] in ("intermediate", "target"):
                victim, victim_key = int(worker.split(":")[0].removeprefix("node")), key
                break
        else:
            time.sleep(0.01)
    assert victim is not None, "no worker started a training stage"
    kill_group(procs[victim])
    killed_at = time.time()
    for i, proc in enumerate(procs):
        if i != victim:
            assert proc.wait(timeout=600) == 0, (tmp_path / f"w{i}.log").read_text()[-3000:]

    events = store_events(out)
    done = Counter(key for key, event, _w, _at in events if event == "done")
    starts = Counter(key for key, event, _w, _at in events if event in ("claim", "takeover"))
    assert len(done) == 11 and set(done.values()) == {1}, done  # each stage ran exactly once
    assert all(starts[k] == 1 for k in done if k != victim_key), starts
    takeovers = [(w, at) for key, event, w, at in events if event == "takeover"]
    assert [w.split(":")[0] for w, _ in takeovers] != [], (
        "the dead worker's stage was not taken over"
    )
    assert victim_key in {key for key, event, *_ in events if event == "takeover"}
    ((_, taken_at),) = takeovers
    # renewed every LEASE/3, so the lease had at least 2/3 of its length left when killed
    assert taken_at - killed_at >= LEASE * 2 / 3 - 0.5
    print(f"killed node{victim} in {victim_key}; taken over {taken_at - killed_at:.1f}s later")
    finished_by = {w.split(":")[0] for key, event, w, _ in events if event == "done"}
    assert f"node{victim}" not in {
        w.split(":")[0] for k, e, w, _ in events if e == "done" and k == victim_key
    }
    assert len(finished_by) >= 2  # the work was shared
    logs = "".join((tmp_path / f"w{i}.log").read_text() for i in range(WORKERS) if i != victim)
    assert "blocked 0" in logs and "blocked 1" not in logs
    assert_same_results(baseline, out)
