"""The run store: an embedded SQLite database of stage states and result rows, plus artifact folders.
Stage folders are written to a temporary sibling and renamed into place, so a folder that exists is complete."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
"""

LEASE_SECONDS = 600.0


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


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Store:
    """SQLite (WAL) state of every stage, and `stages/<kind>/<key>/` artifact folders."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / "store.sqlite"
        self._conn = sqlite3.connect(self.db_path, timeout=60.0, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)

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
        """Atomically move a finished folder into place as the stage's artifact."""
        dest = self.stage_dir(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            shutil.rmtree(dest)
        _fsync_tree(src)
        os.replace(src, dest)
        _fsync_dir(dest.parent)
        return dest

    # -- stage states ---------------------------------------------------------------------
    def get(self, key: str) -> StageRecord | None:
        row = self._conn.execute(
            "SELECT key, kind, status, label, worker, lease_expires, error, summary "
            "FROM stages WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        return StageRecord(*row[:7], summary=json.loads(row[7]) if row[7] else {})

    def is_done(self, key: str) -> bool:
        rec = self.get(key)
        return rec is not None and rec.status == "done" and self.stage_dir(key).exists()

    def try_claim(self, key: str, label: str) -> bool:
        """Take the lease on a stage unless it is done or another live worker holds it."""
        now = time.time()
        me = worker_id()
        with self._tx() as conn:
            row = conn.execute(
                "SELECT status, worker, lease_expires FROM stages WHERE key = ?", (key,)
            ).fetchone()
            if row is not None:
                status, worker, expires = row
                if status == "done" and self.stage_dir(key).exists():
                    return False
                if status == "running" and worker != me and expires is not None and expires > now:
                    return False
            conn.execute(
                "INSERT INTO stages (key, kind, status, label, worker, lease_expires, started_at) "
                "VALUES (?, ?, 'running', ?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET status='running', label=excluded.label, "
                "worker=excluded.worker, lease_expires=excluded.lease_expires, "
                "started_at=excluded.started_at, error=NULL",
                (key, key.split("-", 1)[0], label, me, now + LEASE_SECONDS, now),
            )
        return True

    def renew(self, key: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE stages SET lease_expires = ? WHERE key = ? AND worker = ?",
                (time.time() + LEASE_SECONDS, key, worker_id()),
            )

    def finish(self, key: str, summary: dict[str, Any]) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE stages SET status='done', finished_at=?, lease_expires=NULL, summary=? "
                "WHERE key=?",
                (time.time(), json.dumps(summary, sort_keys=True, default=str), key),
            )

    def fail(self, key: str, error: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE stages SET status='failed', finished_at=?, lease_expires=NULL, error=? "
                "WHERE key=?",
                (time.time(), error, key),
            )

    def stage_records(self, keys: Sequence[str]) -> dict[str, StageRecord]:
        out: dict[str, StageRecord] = {}
        for key in keys:
            rec = self.get(key)
            if rec is not None:
                out[key] = rec
        return out

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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write, fsync, rename: a reader sees the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
