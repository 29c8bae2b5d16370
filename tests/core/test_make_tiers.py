"""scripts/gpu/make_tiers.py: run lists for a capped GPU call, without the runs already made."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from xstilts.study import load_study

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gpu" / "make_tiers.py"
STUDY = REPO / "studies" / "pawsx-scaling.toml"


@pytest.fixture(scope="module")
def m(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script("gpu/make_tiers.py")


def test_first_matching_tier_wins_and_done_runs_are_skipped(m: ModuleType) -> None:
    ids = ["a__x__s1", "b__x__s1", "a__y__s1", "a__x__s2", "c__x__s2"]
    lines = m.make_tiers(ids, {"a__x__s1"}, [["g1", "a__*"], ["g2", "*__x__*"]], "rest")
    assert lines == [("g1", ["a__y__s1", "a__x__s2"]), ("g2", ["b__x__s1", "c__x__s2"])]
    assert m.make_tiers(ids, set(), [["g", "b__*"]], None) == [("g", ["b__x__s1"])]
    assert m.make_tiers(ids, set(), [["g", "z*"]], "all") == [("all", ids)]


def test_script_on_the_study_file(tmp_path: Path, m: ModuleType) -> None:
    ids = m.run_ids(load_study(STUDY))
    assert len(ids) == len(set(ids)) == 216 and ids[0].endswith("__s1") and ids[-1].endswith("__s3")
    done = tmp_path / "results.csv"
    pd.DataFrame({"run_id": ids[:10], "accuracy": 0.5}).to_csv(done, index=False)
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(STUDY), "--done", str(done),
         "--tier", "scratch", "scratch-*", "--rest", "all"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert out[0].startswith("# 206 of 216 runs (10 done)")
    groups = {line.split()[0]: line.split()[1:] for line in out[1:]}
    assert set(groups) == {"scratch", "all"}
    assert all(r.startswith("scratch-") for r in groups["scratch"])
    listed = groups["scratch"] + groups["all"]
    assert len(listed) == 206 and not set(listed) & set(ids[:10])


def test_check_lines_come_first_with_the_target_only_arguments(m: ModuleType) -> None:
    ids = ["s4__none__s1", "s8__none__s1", "s4__x__s1", "e__none__s1"]
    lines = m.check_lines(ids, [["scratch", "s[48]__none__s1", "target.lr=3e-4", "target.lr=1e-3"]])
    extra = ["--", "--stages", "encoder,target", "--set"]
    assert lines == [
        ("scratch", ["s4__none__s1", "s8__none__s1", *extra, "target.lr=3e-4"]),
        ("scratch", ["s4__none__s1", "s8__none__s1", *extra, "target.lr=1e-3"]),
    ]
    with pytest.raises(SystemExit, match="no run of the study matches"):
        m.check_lines(ids, [["g", "nothing*", "target.lr=1e-3"]])
    for bad in ("1e-3", "target.lr=", "target.lr=1 2"):
        with pytest.raises(SystemExit, match="is not KEY=VALUE"):
            m.check_lines(ids, [["g", "s4*", bad]])


def _worker_commands(tmp_path: Path, tiers: str, group: str) -> list[list[str]]:
    """The `xstilts run` argument lists run_study.sh's `worker` function makes of a tier file
    for `group` (the function itself, cut out of the script; xstilts replaced by a recorder)."""
    tmp_path.mkdir(exist_ok=True)
    script = (REPO / "scripts" / "gpu" / "run_study.sh").read_text()
    start = script.index("worker() {")
    function = script[start : script.index("\n}\n", start) + 3]
    (tmp_path / "tiers.txt").write_text(tiers)
    calls = tmp_path / "calls.txt"
    bash = (
        f"{function}\n"
        f"record() {{ printf '%s\\n' \"$*\" >> {calls}; }}\n"
        f"XS=(record); TIERS={tmp_path / 'tiers.txt'}; LOGS={tmp_path}; STUDY=study.toml; "
        f"BUNDLE=b.tar; LR=1e-4\n"
        f"worker {group} 1\n"
    )
    subprocess.run(["bash", "-c", bash], check=True, capture_output=True, text=True)
    return [line.split() for line in calls.read_text().splitlines()] if calls.exists() else []


def test_run_study_worker_passes_a_lines_extra_arguments_after_the_study_lr(
    tmp_path: Path, m: ModuleType
) -> None:
    lines = m.check_lines(["s4__none__s1"], [["scratch", "s4*", "target.lr=1e-3"]])
    lines += [("scratch", ["s4__*", "s8__*"]), ("e5", ["e__*"])]
    tiers = "\n".join(f"{group} {' '.join(members)}" for group, members in lines)
    calls = _worker_commands(tmp_path, "# header\n" + tiers + "\n", "scratch")
    head = ["run", "study.toml", "--bundle", "b.tar", "--set", "target.lr=1e-4", "--no-report"]
    assert calls == [
        [*head, "--only", "s4__none__s1", "--stages", "encoder,target", "--set", "target.lr=1e-3"],
        [*head, "--only", "s4__*", "--only", "s8__*"],
    ]
    assert _worker_commands(tmp_path / "e5", tiers + "\n", "e5") == [[*head, "--only", "e__*"]]


def test_a_check_of_a_key_a_rung_sets_itself_is_refused(m: ModuleType) -> None:
    """A study-wide --set does not reach a rung that sets the key itself: the check would train
    the rung's usual stage under a check's name. Refused, naming the override that works."""
    ids = ["small__none__s1", "base__none__s1"]
    own = {"small": {"target.lr"}, "base": set()}
    with pytest.raises(SystemExit, match=r"small set\(s\) target.lr in the study file.*"
                       r"--set models.small.target.lr=3e-5"):  # fmt: skip
        m.check_lines(ids, [["g", "*__none__s1", "target.lr=3e-5"]], own)
    assert m.check_lines(ids, [["g", "base*", "target.lr=3e-5"]], own)[0][1][0] == "base__none__s1"
    ok = m.check_lines(ids, [["g", "small*", "models.small.target.lr=3e-5"]], own)
    assert ok[0][1][-2:] == ["--set", "models.small.target.lr=3e-5"]
    assert m.check_lines(ids, [["g", "small*", "target.epochs=5"]], own)  # a key it leaves alone


def test_rung_settings_reads_each_rungs_own_keys(m: ModuleType) -> None:
    own = m.rung_settings(load_study(REPO / "studies" / "pawsx-scaling-hub.toml"))
    assert own["e5-small"] == {"target.lr"} and own["xlmr-large"] == set()
