"""Error signatures: identical (reason, subsystem, route/model) log lines grouped with a count and
first/last seen, for the ops page and for collapsing repeats in the log itself."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

SIGNATURE_FIELDS = ("route", "model", "method", "provider")


@dataclass
class Signature:
    reason: str
    subsystem: str
    where: str
    level: str
    count: int
    first_seen: float
    last_seen: float
    example: str


def signature_key(record: logging.LogRecord) -> tuple[str, str, str] | None:
    reason = getattr(record, "reason", None)
    if not isinstance(reason, str) or not reason:
        return None
    where = next((str(getattr(record, f)) for f in SIGNATURE_FIELDS if getattr(record, f, None)), "")
    return reason, record.name, where


class SignatureLog(logging.Handler):
    """Keeps every WARNING-or-worse signature seen in the last `horizon_s` seconds."""

    def __init__(self, horizon_s: float = 3600.0) -> None:
        super().__init__(level=logging.WARNING)
        self.horizon_s = horizon_s
        self._lock_sig = threading.Lock()
        self._seen: dict[tuple[str, str, str], Signature] = {}

    def emit(self, record: logging.LogRecord) -> None:
        key = signature_key(record)
        if key is None:
            return
        now = record.created
        with self._lock_sig:
            found = self._seen.get(key)
            if found is None:
                self._seen[key] = Signature(*key, record.levelname, 1, now, now, record.getMessage()[:300])
            else:
                found.count += 1
                found.last_seen = now

    def top(self, limit: int = 20) -> list[Signature]:
        horizon = time.time() - self.horizon_s
        with self._lock_sig:
            live = [s for s in self._seen.values() if s.last_seen >= horizon]
        return sorted(live, key=lambda s: (-s.count, -s.last_seen))[:limit]


class CollapseFilter(logging.Filter):
    """Lets the first line of a signature through, drops repeats inside the window, and marks the
    next line after the window with `repeated` (how many were dropped) and first/last seen."""

    def __init__(self, window_s: float = 60.0) -> None:
        super().__init__()
        self.window_s = window_s
        self._windows: dict[tuple[str, str, str], list[float]] = {}  # key -> [start, first, last, dropped]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = signature_key(record)
        if key is None:
            return True
        now = record.created
        with self._lock:
            window = self._windows.get(key)
            if window is None or now - window[0] >= self.window_s:
                if window is not None and window[3]:
                    record.repeated = int(window[3])
                    record.first_seen = window[1]
                    record.last_seen = window[2]
                self._windows[key] = [now, now, now, 0]
                return True
            window[2] = now
            window[3] += 1
            return False
