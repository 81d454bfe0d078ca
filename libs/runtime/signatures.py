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
    """The one log-collapse mechanism: lets the first line of a signature through, drops repeats
    inside the window, and reports the dropped count as a "(repeated)" summary line (with first
    and last seen) on the next line after the window, or from `summaries()` when the window
    closes with no further line, or at shutdown (`summaries(force=True)`): a count is never lost."""

    def __init__(self, window_s: float = 60.0) -> None:
        super().__init__()
        self.window_s = window_s
        self._windows: dict[tuple[str, str, str], _Window] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = signature_key(record)
        if key is None or getattr(record, "repeated", None) is not None:
            return True
        now = record.created
        with self._lock:
            window = self._windows.get(key)
            if window is None or now - window.started >= self.window_s:
                if window is not None and window.dropped:
                    record.repeated = window.dropped
                    record.first_seen = window.first_seen
                    record.last_seen = window.last_seen
                self._windows[key] = _Window(now, now, now, 0, record)
                return True
            window.last_seen = now
            window.dropped += 1
            return False

    def summaries(self, force: bool = False, now: float | None = None) -> list[logging.LogRecord]:
        """Summary records for windows that have closed with dropped lines (every window with
        dropped lines when `force`); their counts are reset so none is reported twice."""
        now = time.time() if now is None else now
        out = []
        with self._lock:
            for key, window in list(self._windows.items()):
                closed = now - window.started >= self.window_s
                if window.dropped and (force or closed):
                    out.append(window.summary(self.window_s))
                    window.dropped = 0
                if closed:
                    del self._windows[key]
        return out


@dataclass
class _Window:
    started: float
    first_seen: float
    last_seen: float
    dropped: int
    template: logging.LogRecord

    def summary(self, window_s: float) -> logging.LogRecord:
        """A line that stands for the dropped repeats only (`window_s` set marks it so for rca)."""
        record = logging.makeLogRecord(vars(self.template))
        record.msg, record.args = f"{self.template.getMessage()} (repeated)", None
        record.exc_info = record.exc_text = None
        record.created = time.time()
        record.msecs = (record.created % 1) * 1000
        record.repeated = self.dropped
        record.first_seen = self.first_seen
        record.last_seen = self.last_seen
        record.window_s = window_s
        return record
