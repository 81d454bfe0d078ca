"""JSON log lines with the service name, request id and trace id on every line.

Never pass tokens, keys or e-mail addresses as log fields: the formatter writes what it is given.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections import deque
from typing import Any

from libs.runtime import context
from libs.runtime.signatures import CollapseFilter, SignatureLog

_RESERVED = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "event": record.getMessage(),
        }
        ctx = context.get()
        if ctx is not None:
            payload["request_id"] = ctx.request_id
            payload["trace_id"] = ctx.trace_id
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, separators=(",", ":"))


class RecentRecords:
    """The last WARNING-or-worse JSON log lines of this process (at most `max_records`, at most
    `horizon_s` old), so a Diagnose reply can hand them to `inkwell rca` and /ops."""

    def __init__(self, max_records: int = 2000, horizon_s: float = 3600.0) -> None:
        self.horizon_s = horizon_s
        self._lines: deque[tuple[float, str]] = deque(maxlen=max_records)
        self._evicted_at = 0.0  # time of the newest record that fell out of the full buffer
        self._lock = threading.Lock()

    def add(self, created: float, line: str) -> None:
        with self._lock:
            if self._lines.maxlen is not None and len(self._lines) == self._lines.maxlen:
                self._evicted_at = max(self._evicted_at, self._lines[0][0])
            self._lines.append((created, line))

    def lines(self, since_s: float) -> tuple[list[str], bool]:
        """Lines of the last `since_s` seconds (capped at the horizon), oldest first, and whether
        records inside that window were already evicted."""
        start = time.time() - min(max(since_s, 0.0), self.horizon_s)
        with self._lock:
            return [line for created, line in self._lines if created >= start], self._evicted_at >= start

    def clear(self) -> None:
        with self._lock:
            self._lines.clear()
            self._evicted_at = 0.0


class _JsonStreamHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """Writes each line and keeps the WARNING-or-worse ones (exactly as written) in RECENT."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            self.stream.write(line + self.terminator)
            self.flush()
        except Exception:
            self.handleError(record)
            return
        if record.levelno >= logging.WARNING:
            RECENT.add(record.created, line)


SIGNATURES = SignatureLog()
RECENT = RecentRecords()


def recent_lines(since_s: float) -> tuple[list[str], bool]:
    """This process's WARNING-or-worse log lines of the last `since_s` seconds (at most one hour,
    at most 2000 lines), oldest first, each the JSON line as written; and whether older lines
    inside the window were already dropped from the bounded buffer."""
    return RECENT.lines(since_s)


def recent_records(since_s: float) -> list[dict[str, Any]]:
    """The same records as `recent_lines`, parsed: `since_s` is a duration in seconds counted
    back from now (e.g. 3600 for the last hour), not a timestamp."""
    return [json.loads(line) for line in RECENT.lines(since_s)[0]]


def configure(service: str, level: str = "INFO") -> None:
    """Route every logger (ours, grpc's, uvicorn's) to one JSON stream on stderr. Identical
    WARNING-or-worse signatures collapse to one line per minute with a count; every signature is
    also kept (with counts) for the ops page, and the WARNING-or-worse lines as written are kept
    in a bounded ring buffer (`recent_records`) for Diagnose."""
    handler = _JsonStreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(CollapseFilter(60.0))
    root = logging.getLogger()
    root.handlers[:] = [SIGNATURES, handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
