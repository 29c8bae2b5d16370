"""Atomic writes and corrupt artifacts: every published stage folder carries a manifest of its
files' SHA-256 and sizes; a truncated file makes the stage not done, a changed byte is caught
before the folder is loaded by the next stage, and either way the stage is recomputed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from reliability_helpers import assert_same_results, run_cli, store_events, write_study

from xstilts.plan import build_plan
from xstilts.store import MANIFEST_NAME, Store
from xstilts.study import load_study


def _published(tmp_path: Path) -> tuple[Store, str, Path]:
    store = Store(tmp_path / "store")
    key = "encoder-0123456789abcdef0000"
    assert store.try_claim(key, "test")
    src = tmp_path / "out"
    (src / "encoder").mkdir(parents=True)
    (src / "encoder" / "model.safetensors").write_bytes(bytes(range(256)) * 40)
    (src / "summary.json").write_text("{}")
    folder = store.publish(key, src)
    assert store.finish(key, {})
    return store, key, folder


def test_publish_writes_a_manifest_and_verifies(tmp_path: Path) -> None:
    store, key, folder = _published(tmp_path)
    assert (folder / MANIFEST_NAME).exists()
    assert store.is_done(key) and store.verify(key) == []
    assert not (tmp_path / "out").exists()  # moved into place, not copied


def test_truncated_file_makes_the_stage_not_done(tmp_path: Path) -> None:
    store, key, folder = _published(tmp_path)
    weights = folder / "encoder" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert not store.is_done(key)
    assert any("truncated" in p for p in store.verify(key))
    assert store.try_claim(key, "again")  # so it runs again


def test_changed_byte_is_found_by_full_verification(tmp_path: Path) -> None:
    store, key, folder = _published(tmp_path)
    weights = folder / "encoder" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[500] ^= 1
    weights.write_bytes(bytes(data))
    assert store.is_done(key)  # the cheap check sees sizes only ...
    problems = store.verify(key)  # ... the one made before loading hashes
    assert problems and "SHA-256 differs" in problems[0]
    store.invalidate(key, "; ".join(problems))
    assert store.get(key) is None and not folder.exists()
    assert [e["event"] for e in store.events(key)] == ["claim", "done", "corrupt"]


def test_unreadable_manifest_is_corrupt(tmp_path: Path) -> None:
    store, key, folder = _published(tmp_path)
    (folder / MANIFEST_NAME).write_text('{"files": ')
    assert not store.is_done(key)


@pytest.mark.slow
@pytest.mark.ci
def test_corrupt_stage_folders_are_recomputed_not_loaded(
    tmp_path: Path, shared_data: Path, tiny_encoder: Path, baseline: Path
) -> None:
    out = tmp_path / "runs"
    study = write_study(tmp_path / "study.toml", out, shared_data, encoder=tiny_encoder)
    first = run_cli("run", str(study))
    assert first.returncode == 0, first.stdout + first.stderr
    store = Store(out)
    plan = build_plan(load_study(study))
    enc = next(s.key for s in plan.ordered_stages() if s.kind == "encoder")
    inter = next(s.key for s in plan.ordered_stages() if s.kind == "intermediate")
    target = next(s.key for s in plan.ordered_stages() if s.deps == (inter,))
    # 1. a torn write in the encoder's weights (shorter file)
    w = store.stage_dir(enc) / "encoder" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:-100])
    # 2. one changed byte in an intermediate checkpoint (same size), and its target forgotten,
    #    so the target stage must load it again
    w = store.stage_dir(inter) / "encoder" / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[len(data) // 2] ^= 0x10
    w.write_bytes(bytes(data))
    store.invalidate(target, "test: forget the target")
    store.close()

    second = run_cli("run", str(study))
    assert second.returncode == 0, second.stdout + second.stderr
    events = store_events(out)
    done = Counter(key for key, event, *_ in events if event == "done")
    assert done[enc] == 2 and done[inter] == 2 and done[target] == 2
    assert all(n == 1 for k, n in done.items() if k not in (enc, inter, target))
    corrupt = [
        i for i, (key, event, *_) in enumerate(events) if event == "corrupt" and key == inter
    ]
    target_done = [
        i for i, (key, event, *_) in enumerate(events) if event == "done" and key == target
    ]
    assert corrupt and corrupt[0] < target_done[-1]  # found before the target used it
    assert_same_results(baseline, out)
