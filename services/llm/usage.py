"""Per-user LLM usage (calls, tokens, provider, model, outcome), for the subscription endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("inkwell.llm.usage")

SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    ts REAL NOT NULL,
    purpose TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    outcome TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_ms REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_by_user ON usage (user_id, ts);
"""


class UsageStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: safe against a crash of this process
        self._db.executescript(SCHEMA)

    def record_many(self, rows: list[tuple[Any, ...]]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO usage (user_id, ts, purpose, provider, model, outcome, prompt_tokens, completion_tokens,"
                " latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._db.execute("COMMIT")

    def record(
        self,
        user_id: str,
        purpose: str,
        provider: str,
        model: str,
        outcome: str,
        prompt_tokens: int,
        completion_tokens: int,
        latency_ms: float,
    ) -> None:
        self.record_many(
            [(user_id, time.time(), purpose, provider, model, outcome, prompt_tokens, completion_tokens, latency_ms)]
        )

    def summary(self, user_id: str, since: float, until: float) -> list[dict[str, Any]]:
        """Calls, tokens and summed latency per day, provider, model and outcome."""
        with self._lock:
            rows = self._db.execute(
                "SELECT date(ts, 'unixepoch') AS day, provider, model, outcome, COUNT(*), SUM(prompt_tokens),"
                " SUM(completion_tokens), SUM(latency_ms) FROM usage WHERE user_id = ? AND ts >= ? AND ts < ?"
                " GROUP BY day, provider, model, outcome ORDER BY day",
                (user_id, since, until),
            ).fetchall()
        return [
            {
                "day": day,
                "provider": provider,
                "model": model,
                "outcome": outcome,
                "calls": calls,
                "prompt_tokens": prompt or 0,
                "completion_tokens": completion or 0,
                "total_latency_ms": float(latency or 0.0),
            }
            for day, provider, model, outcome, calls, prompt, completion, latency in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class UsageRecorder:
    """Keeps usage writes off the reply path: records are queued and written in batches."""

    def __init__(self, store: UsageStore) -> None:
        self.store = store
        self._queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def add(
        self,
        user_id: str,
        purpose: str,
        provider: str,
        model: str,
        outcome: str,
        prompt_tokens: int,
        completion_tokens: int,
        latency_ms: float,
    ) -> None:
        self._queue.put_nowait(
            (user_id, time.time(), purpose, provider, model, outcome, prompt_tokens, completion_tokens, latency_ms)
        )
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="llm-usage-writer")

    async def _drain(self) -> None:
        while True:
            rows = [await self._queue.get()]
            while not self._queue.empty() and len(rows) < 500:
                rows.append(self._queue.get_nowait())
            try:
                await asyncio.to_thread(self.store.record_many, rows)
            except Exception:
                log.exception(
                    "usage records could not be written", extra={"reason": "USAGE_WRITE_FAILED", "records": len(rows)}
                )
            finally:
                for _ in rows:
                    self._queue.task_done()

    async def flush(self) -> None:
        """Wait until every queued record is written (tests, shutdown)."""
        await self._queue.join()

    async def close(self) -> None:
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
