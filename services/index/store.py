"""The index service's durable store (SQLite, WAL, synchronous=FULL): the job queue and the
documents, which are the source of truth. txtai indexes are projections of this store, so a
damaged or stale index is rebuilt from it and nothing acknowledged is lost.

Every method is synchronous and thread-safe (one connection behind a lock); async callers use
asyncio.to_thread.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('upsert', 'delete')),
    payload TEXT NOT NULL,
    documents INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'done', 'failed')),
    reason TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, seq);
CREATE TABLE IF NOT EXISTS documents (
    user_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (user_id, doc_id)
);
CREATE INDEX IF NOT EXISTS documents_by_seq ON documents (user_id, seq);
"""


@dataclass(frozen=True)
class Job:
    id: str
    seq: int
    user_id: str
    kind: str
    documents: int
    state: str
    reason: str
    message: str
    created_at: float
    finished_at: float | None
    payload: Any = None


@dataclass(frozen=True)
class StoredDocument:
    doc_id: str
    text: str
    metadata: dict[str, str]
    deleted: bool
    seq: int


class IndexStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a commit is on disk before we acknowledge
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- the queue ----------------------------------------------------------------------------

    def enqueue(self, user_id: str, kind: str, payload: list[Any]) -> Job:
        job_id = "job_" + secrets.token_hex(12)
        now = time.time()
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO jobs (id, user_id, kind, payload, documents, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (job_id, user_id, kind, json.dumps(payload), len(payload), now),
            )
            seq = int(cursor.lastrowid or 0)
        return Job(job_id, seq, user_id, kind, len(payload), "queued", "", "", now, None)

    def queued(self, max_documents: int) -> list[Job]:
        """The oldest queued jobs, up to about `max_documents` documents (at least one job)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, id, user_id, kind, payload, documents, created_at FROM jobs "
                "WHERE state = 'queued' ORDER BY seq LIMIT 64"
            ).fetchall()
        jobs: list[Job] = []
        total = 0
        for seq, job_id, user_id, kind, payload, documents, created_at in rows:
            if jobs and total + documents > max_documents:
                break
            jobs.append(
                Job(job_id, seq, user_id, kind, documents, "queued", "", "", created_at, None, json.loads(payload))
            )
            total += documents
        return jobs

    def apply(self, jobs: Iterable[Job]) -> set[str]:
        """Write the jobs' documents in one transaction (idempotent per user and id). Returns the users.

        Jobs stay queued until `mark_done`, after their users' indexes are saved: a crash in between
        re-applies them, which changes nothing."""
        users: set[str] = set()
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for job in jobs:
                    users.add(job.user_id)
                    if job.kind == "upsert":
                        self._db.executemany(
                            "INSERT INTO documents (user_id, doc_id, text, metadata, deleted, seq, updated_at) "
                            "VALUES (?, ?, ?, ?, 0, ?, ?) ON CONFLICT (user_id, doc_id) DO UPDATE SET "
                            "text = excluded.text, metadata = excluded.metadata, deleted = 0, seq = excluded.seq, "
                            "updated_at = excluded.updated_at",
                            [
                                (job.user_id, d["id"], d["text"], json.dumps(d.get("metadata", {})), job.seq, now)
                                for d in job.payload
                            ],
                        )
                    else:
                        self._db.executemany(
                            "UPDATE documents SET deleted = 1, seq = ?, updated_at = ? "
                            "WHERE user_id = ? AND doc_id = ?",
                            [(job.seq, now, job.user_id, doc_id) for doc_id in job.payload],
                        )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return users

    def mark_done(self, jobs: Iterable[Job]) -> None:
        now = time.time()
        with self._lock:
            self._db.executemany(
                "UPDATE jobs SET state = 'done', finished_at = ? WHERE seq = ?", [(now, job.seq) for job in jobs]
            )

    def fail(self, job: Job, reason: str, message: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET state = 'failed', reason = ?, message = ?, finished_at = ? WHERE seq = ?",
                (reason, message[:500], time.time(), job.seq),
            )

    def job(self, user_id: str, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute(
                "SELECT seq, id, user_id, kind, documents, state, reason, message, created_at, finished_at "
                "FROM jobs WHERE id = ? AND user_id = ?",
                (job_id, user_id),
            ).fetchone()
        if row is None:
            return None
        seq, jid, uid, kind, documents, state, reason, message, created_at, finished_at = row
        return Job(jid, seq, uid, kind, documents, state, reason, message, created_at, finished_at)

    def queue_stats(self) -> tuple[int, float | None]:
        """(queued jobs, creation time of the oldest)."""
        with self._lock:
            count, oldest = self._db.execute(
                "SELECT COUNT(*), MIN(created_at) FROM jobs WHERE state = 'queued'"
            ).fetchone()
        return int(count), oldest

    # --- the documents -------------------------------------------------------------------------

    def changes_since(self, user_id: str, seq: int) -> list[StoredDocument]:
        with self._lock:
            rows = self._db.execute(
                "SELECT doc_id, text, metadata, deleted, seq FROM documents WHERE user_id = ? AND seq > ? ORDER BY seq",
                (user_id, seq),
            ).fetchall()
        return [StoredDocument(d, t, json.loads(m), bool(x), s) for d, t, m, x, s in rows]

    def documents(self, user_id: str, doc_ids: list[str]) -> dict[str, StoredDocument]:
        found: dict[str, StoredDocument] = {}
        with self._lock:
            for start in range(0, len(doc_ids), 500):
                chunk = doc_ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT doc_id, text, metadata, seq FROM documents "
                    f"WHERE user_id = ? AND deleted = 0 AND doc_id IN ({marks})",
                    (user_id, *chunk),
                ).fetchall()
                for d, t, m, s in rows:
                    found[d] = StoredDocument(d, t, json.loads(m), False, s)
        return found

    def max_seq(self, user_id: str) -> int:
        with self._lock:
            (value,) = self._db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM documents WHERE user_id = ?", (user_id,)
            ).fetchone()
        return int(value)

    def users(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT DISTINCT user_id FROM documents")]
