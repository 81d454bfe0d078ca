"""Per-user LLM usage (calls, tokens, provider, model, outcome), for the subscription endpoints."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

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
        self._db.executescript(SCHEMA)

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
        with self._lock:
            self._db.execute(
                "INSERT INTO usage (user_id, ts, purpose, provider, model, outcome, prompt_tokens, completion_tokens,"
                " latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (user_id, time.time(), purpose, provider, model, outcome, prompt_tokens, completion_tokens, latency_ms),
            )

    def summary(self, user_id: str, since: float, until: float) -> list[dict[str, Any]]:
        """Calls and tokens per day, provider, model and outcome."""
        with self._lock:
            rows = self._db.execute(
                "SELECT date(ts, 'unixepoch') AS day, provider, model, outcome, COUNT(*), SUM(prompt_tokens),"
                " SUM(completion_tokens) FROM usage WHERE user_id = ? AND ts >= ? AND ts < ?"
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
            }
            for day, provider, model, outcome, calls, prompt, completion in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()
