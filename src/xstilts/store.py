"""The run store: an embedded SQLite database of stage states and result rows, plus artifact folders.

Stage folders are written to a temporary sibling and renamed into place, so a folder that exists is
complete; each carries a manifest of its files' SHA-256 and size, checked before it is used again.

Several workers (processes, Ray tasks, Slurm jobs) may share one store. A worker claims a stage by
taking its lease; a heartbeat (`LeaseKeeper`) renews it while the stage runs. A lease whose holder
stopped renewing expires after `lease_seconds()` (env `XSTILTS_LEASE_SECONDS`, default 600) and the
stage can then be claimed again; a holder on this same host that is no longer alive is replaced at
once. Every claim, takeover, finish, failure and invalidation is appended to the `events` table."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xstilts.hashing import sha256_file

SCHEMA = """
CREATE TABLE IF NOT EXISTS stages (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    label TEXT NOT NULL DEFAULT '',
    worker TEXT,
    lease_expires REAL,
    started_at REAL,
    finished_at REAL,
    error TEXT,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL,
    lang TEXT NOT NULL,
    split TEXT NOT NULL,
    row TEXT NOT NULL,
    PRIMARY KEY (run_id, lang, split)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    event TEXT NOT NULL,
    worker TEXT NOT NULL,
    at REAL NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS events_key ON events (key);
"""

LEASE_SECONDS = 600.0
"""Default lease length; `XSTILTS_LEASE_SECONDS` overrides it (read at every claim and renewal)."""

MANIFEST_NAME = ".xstilts-manifest.json"
"""Written into every published stage folder: {relative path: {"sha256", "size"}} of its files."""


class CorruptArtifactError(RuntimeError):
    """A stage folder or checkpoint whose files do not match the checksums recorded when written."""


def lease_seconds() -> float:
    raw = os.environ.get("XSTILTS_LEASE_SECONDS", "").strip()
    if not raw:
        return LEASE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(
            f"XSTILTS_LEASE_SECONDS must be a number of seconds, got {raw!r}"
        ) from None
    if value <= 0:
        raise ValueError(f"XSTILTS_LEASE_SECONDS must be positive, got {raw!r}")
    return value


def _host() -> str:
    return os.environ.get("XSTILTS_WORKER_HOST") or socket.gethostname()


def _start_token(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), so a reused pid is not
    mistaken for the original process; "0" where /proc is not available."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "0"
    return stat.rsplit(")", 1)[1].split()[19]


def worker_id() -> str:
    """`host:pid:start`: who holds a lease (the host part can be set with XSTILTS_WORKER_HOST)."""
    pid = os.getpid()
    return f"{_host()}:{pid}:{_start_token(pid)}"


def worker_alive(worker: str | None) -> bool | None:
    """Whether the worker that holds a lease still runs: None when it is on another host (or the
    id has another form), so only its lease expiry can tell."""
    if not worker:
        return None
    parts = worker.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != _host() or not (parts[1].isascii() and parts[1].isdigit()):
        return None
    pid, token = int(parts[1]), parts[2]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return token == "0" or _start_token(pid) == token


@dataclass(frozen=True)
class StageRecord:
    key: str
    kind: str
    status: str
    label: str
    worker: str | None
    lease_expires: float | None
    error: str | None
    summary: dict[str, Any]


# -- checksums ------------------------------------------------------------------------------------
def build_manifest(folder: Path) -> dict[str, dict[str, Any]]:
    """{relative posix path: {"sha256", "size"}} of every file below `folder` but the manifest."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel != MANIFEST_NAME:
            out[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    return out


def write_manifest(folder: Path) -> dict[str, dict[str, Any]]:
    manifest = build_manifest(folder)
    atomic_write_json(Path(folder) / MANIFEST_NAME, {"files": manifest})
    return manifest


def read_manifest(folder: Path) -> dict[str, dict[str, Any]] | None:
    """The folder's manifest; None when it has none (published before manifests existed).
    An unreadable manifest raises CorruptArtifactError."""
    path = Path(folder) / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptArtifactError(f"{path}: unreadable manifest ({exc})") from None
    return files


def manifest_problems(folder: Path, *, full: bool = True) -> list[str]:
    """What is wrong with a folder against its manifest ([] when it matches or has none): missing
    files, wrong sizes, and with `full` wrong SHA-256."""
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder}: missing"]
    try:
        manifest = read_manifest(folder)
    except CorruptArtifactError as exc:
        return [str(exc)]
    if manifest is None:
        return []
    problems = []
    for rel, meta in manifest.items():
        path = folder / rel
        try:
            size = path.stat().st_size
        except OSError:
            problems.append(f"{path}: missing")
            continue
        if size != meta.get("size"):
            problems.append(f"{path}: {size} bytes, {meta.get('size')} when written (truncated?)")
        elif full and sha256_file(path) != meta.get("sha256"):
            problems.append(f"{path}: SHA-256 differs from the one recorded when written")
    return problems


class Store:
    """SQLite (WAL) state of every stage, and `stages/<kind>/<key>/` artifact folders."""

    def __init__(self, root: Path, *, timeout: float = 60.0) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / "store.sqlite"
        self._conn = sqlite3.connect(self.db_path, timeout=timeout, isolation_level=None)
        # WAL needs shared memory between the processes: on a network filesystem (NFS, Lustre)
        # whose nodes share the store, set XSTILTS_SQLITE_JOURNAL=DELETE.
        journal = os.environ.get("XSTILTS_SQLITE_JOURNAL", "WAL").strip().upper() or "WAL"
        if journal not in {"WAL", "DELETE", "TRUNCATE", "PERSIST"}:
            raise ValueError(f"XSTILTS_SQLITE_JOURNAL must be WAL or DELETE, got {journal!r}")
        self._conn.execute(f"PRAGMA journal_mode={journal}")
        self._conn.execute(
            "PRAGMA synchronous=NORMAL" if journal == "WAL" else "PRAGMA synchronous=FULL"
        )
        self._conn.executescript(SCHEMA)
        self._verified: dict[str, tuple[tuple[str, int, int], ...]] = {}

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    @staticmethod
    def _event(conn: sqlite3.Connection, key: str, event: str, detail: str | None = None) -> None:
        conn.execute(
            "INSERT INTO events (key, event, worker, at, detail) VALUES (?, ?, ?, ?, ?)",
            (key, event, worker_id(), time.time(), detail),
        )

    # -- artifacts ------------------------------------------------------------------------
    def stage_dir(self, key: str) -> Path:
        kind = key.split("-", 1)[0]
        return self.root / "stages" / kind / key

    def work_dir(self, key: str) -> Path:
        """Scratch folder of a stage in progress (kept across crashes, so training resumes)."""
        path = self.root / "work" / key
        path.mkdir(parents=True, exist_ok=True)
        return path

    def publish(self, key: str, src: Path) -> Path:
        """Write the folder's manifest, fsync it, and atomically move it into place."""
        dest = self.stage_dir(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_manifest(src)
        _fsync_tree(src)
        if dest.exists():  # an invalid earlier copy: move it aside first, never half-delete it
            old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(dest, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(src, dest)
        _fsync_dir(dest.parent)
        return dest

    def artifact_ok(self, key: str) -> bool:
        """Cheap check of a published folder: present, manifest readable, every size right."""
        return not manifest_problems(self.stage_dir(key), full=False)

    def verify(self, key: str) -> list[str]:
        """Full check of a published folder against its manifest (SHA-256 of every file); a
        folder verified earlier in this process and unchanged since (size, mtime) is not rehashed."""
        folder = self.stage_dir(key)
        sig = _tree_signature(folder)
        if sig and self._verified.get(key) == sig:
            return []
        problems = manifest_problems(folder, full=True)
        if not problems:
            self._verified[key] = sig
        return problems

    def invalidate(self, key: str, reason: str) -> None:
        """Forget a stage whose artifacts are corrupt: its folder is removed and its row deleted,
        so it runs again."""
        self._verified.pop(key, None)
        with self._tx() as conn:
            conn.execute("DELETE FROM stages WHERE key = ?", (key,))
            self._event(conn, key, "corrupt", reason)
        folder = self.stage_dir(key)
        if folder.exists():
            old = folder.with_name(f".{folder.name}.corrupt-{uuid.uuid4().hex[:8]}")
            os.replace(folder, old)
            shutil.rmtree(old, ignore_errors=True)

    # -- stage states ---------------------------------------------------------------------
    def get(self, key: str) -> StageRecord | None:
        row = self._conn.execute(
            "SELECT key, kind, status, label, worker, lease_expires, error, summary "
            "FROM stages WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        key_, kind, status, label, worker, lease_expires, error, summary = row
        return StageRecord(
            key_, kind, status, label, worker, lease_expires, error,
            json.loads(summary) if summary else {},
        )  # fmt: skip

    def is_done(self, key: str) -> bool:
        rec = self.get(key)
        return rec is not None and rec.status == "done" and self.artifact_ok(key)

    def holder_alive(self, rec: StageRecord) -> bool:
        """Whether a running stage's lease is still held: not expired, holder not known dead."""
        if rec.status != "running":
            return False
        if rec.lease_expires is None or rec.lease_expires <= time.time():
            return False
        return worker_alive(rec.worker) is not False

    def try_claim(self, key: str, label: str) -> bool:
        """Take the lease on a stage unless it is done or another live worker holds it. A lease
        that expired, or whose holder on this host has died, is taken over (event 'takeover')."""
        now = time.time()
        me = worker_id()
        with self._tx() as conn:
            row = conn.execute(
                "SELECT status, worker, lease_expires FROM stages WHERE key = ?", (key,)
            ).fetchone()
            event, detail = "claim", None
            if row is not None:
                status, worker, expires = row
                if status == "done" and self.artifact_ok(key):
                    return False
                if status == "running" and worker != me:
                    if expires is not None and expires > now and worker_alive(worker) is not False:
                        return False
                    event = "takeover"
                    why = "lease expired" if expires is None or expires <= now else "holder died"
                    detail = f"from {worker} ({why})"
            conn.execute(
                "INSERT INTO stages (key, kind, status, label, worker, lease_expires, started_at) "
                "VALUES (?, ?, 'running', ?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET status='running', label=excluded.label, "
                "worker=excluded.worker, lease_expires=excluded.lease_expires, "
                "started_at=excluded.started_at, finished_at=NULL, error=NULL",
                (key, key.split("-", 1)[0], label, me, now + lease_seconds(), now),
            )
            self._event(conn, key, event, detail)
        return True

    def renew(self, key: str) -> bool:
        """Extend this worker's lease; False when the lease is no longer ours."""
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE stages SET lease_expires = ? "
                "WHERE key = ? AND worker = ? AND status = 'running'",
                (time.time() + lease_seconds(), key, worker_id()),
            )
            return cur.rowcount == 1

    def owns(self, key: str) -> bool:
        row = self._conn.execute(
            "SELECT status, worker FROM stages WHERE key = ?", (key,)
        ).fetchone()
        return row is not None and row[0] == "running" and row[1] == worker_id()

    def release(self, key: str, reason: str = "released") -> None:
        """Give a running stage back (it becomes pending again), if this worker holds it."""
        with self._tx() as conn:
            cur = conn.execute(
                "DELETE FROM stages WHERE key = ? AND worker = ? AND status = 'running'",
                (key, worker_id()),
            )
            if cur.rowcount:
                self._event(conn, key, "release", reason)

    def finish(self, key: str, summary: dict[str, Any]) -> bool:
        """Mark a stage done; False (and nothing changed) when this worker lost its lease."""
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE stages SET status='done', finished_at=?, lease_expires=NULL, summary=? "
                "WHERE key=? AND worker=? AND status='running'",
                (time.time(), json.dumps(summary, sort_keys=True, default=str), key, worker_id()),
            )
            if cur.rowcount:
                self._event(conn, key, "done")
            return cur.rowcount == 1

    def adopt(self, key: str, label: str, summary: dict[str, Any]) -> None:
        """Record an artifact folder that was put in place from elsewhere (a bundle) as done."""
        now = time.time()
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO stages (key, kind, status, label, worker, started_at, finished_at, "
                "summary) VALUES (?, ?, 'done', ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                "status='done', label=excluded.label, worker=excluded.worker, lease_expires=NULL, "
                "finished_at=excluded.finished_at, summary=excluded.summary, error=NULL",
                (key, key.split("-", 1)[0], label, worker_id(), now, now,
                 json.dumps(summary, sort_keys=True, default=str)),
            )  # fmt: skip
            self._event(conn, key, "adopt")

    def fail(self, key: str, error: str) -> None:
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE stages SET status='failed', finished_at=?, lease_expires=NULL, error=? "
                "WHERE key=? AND (worker=? OR status != 'running')",
                (time.time(), error, key, worker_id()),
            )
            if cur.rowcount:
                lines = [line for line in (error or "").splitlines() if line.strip()]
                self._event(conn, key, "failed", lines[-1][:500] if lines else "")

    def finished_at(self, key: str) -> float | None:
        row = self._conn.execute("SELECT finished_at FROM stages WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def stage_records(self, keys: Sequence[str]) -> dict[str, StageRecord]:
        out: dict[str, StageRecord] = {}
        for key in keys:
            rec = self.get(key)
            if rec is not None:
                out[key] = rec
        return out

    def events(self, key: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT key, event, worker, at, detail FROM events"
        args: tuple[Any, ...] = ()
        if key is not None:
            sql, args = sql + " WHERE key = ?", (key,)
        rows = self._conn.execute(sql + " ORDER BY id", args).fetchall()
        return [dict(zip(("key", "event", "worker", "at", "detail"), r, strict=True)) for r in rows]

    def execution_counts(self) -> dict[str, int]:
        """How many times each stage was completed (its 'done' events)."""
        rows = self._conn.execute(
            "SELECT key, COUNT(*) FROM events WHERE event = 'done' GROUP BY key"
        ).fetchall()
        return dict(rows)

    # -- result rows ----------------------------------------------------------------------
    def put_results(self, rows: Sequence[dict[str, Any]]) -> None:
        with self._tx() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO results (run_id, lang, split, row) VALUES (?, ?, ?, ?)",
                [(r["run_id"], r["lang"], r["split"], json.dumps(r, sort_keys=True)) for r in rows],
            )

    def results(self, run_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        rows = self._conn.execute("SELECT run_id, row FROM results ORDER BY run_id, lang, split")
        wanted = set(run_ids) if run_ids is not None else None
        return [json.loads(row) for run_id, row in rows if wanted is None or run_id in wanted]


class LeaseKeeper:
    """Renews a stage's lease from a background thread (its own connection) while the stage runs,
    every third of the lease; `lost` turns true if another worker took the stage over."""

    def __init__(self, root: Path, key: str) -> None:
        self.root, self.key = Path(root), key
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{key}", daemon=True)

    def _run(self) -> None:
        store = Store(self.root, timeout=10.0)
        try:
            while not self._stop.wait(max(0.2, lease_seconds() / 3)):
                try:
                    if not store.renew(self.key):
                        self.lost = True
                        return
                except sqlite3.OperationalError:
                    continue  # busy: try again on the next beat, well before the lease ends
        finally:
            store.close()

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _tree_signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    if not folder.is_dir():
        return ()
    out = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        st = path.stat()
        out.append((path.relative_to(folder).as_posix(), st.st_size, st.st_mtime_ns))
    return tuple(out)


def _fsync_tree(path: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(path):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_beside(path: Path) -> Path:
    """Where a file is written before it is renamed to `path`: per process, since several workers
    of one store may write the same file at once (one shared name raced: a worker renamed the
    file another was about to rename, FileNotFoundError)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def atomic_copy(src: Path, dest: Path) -> None:
    """Copy, then rename: a reader sees the old file or the whole copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(dest)
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write, fsync, rename: a reader sees the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path)
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
