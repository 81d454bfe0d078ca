"""JSON log lines with the service name, request id and trace id on every line.

Never pass tokens or keys as log fields. Attacker-controlled strings (token claims such as iss,
azp, kid; headers) reach logs through fields and messages, so the formatter scrubs every e-mail
address and truncates every string field to `MAX_FIELD_CHARS` (the event to `MAX_EVENT_CHARS`).
"""

from __future__ import annotations

import atexit
import json
import logging
import re
import sys
import threading
import time
from collections import deque
from typing import IO, Any

from libs.runtime import context
from libs.runtime.signatures import CollapseFilter, SignatureLog

MAX_FIELD_CHARS = 200
MAX_EVENT_CHARS = 2000
_EMAIL = re.compile(r"[^\s@\"'<>(),;:]{1,64}@[^\s@\"'<>(),;:]{1,255}")


def scrub(value: Any, limit: int = MAX_FIELD_CHARS) -> Any:
    """E-mail addresses replaced by `<email>`, strings cut to `limit` characters (saying how long
    they were); containers scrubbed item by item. Non-strings are returned unchanged."""
    if isinstance(value, str):
        value = _EMAIL.sub("<email>", value)
        return value if len(value) <= limit else f"{value[:limit]}...(+{len(value) - limit} chars)"
    if isinstance(value, dict):
        return {scrub(str(k), 64): scrub(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub(v, limit) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return scrub(str(value), limit)


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
            "event": scrub(record.getMessage(), MAX_EVENT_CHARS),
        }
        ctx = context.get()
        if ctx is not None:
            payload["request_id"] = ctx.request_id
            payload["trace_id"] = ctx.trace_id
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                payload[key] = scrub(value)
        if record.exc_info:
            payload["exc_info"] = _EMAIL.sub("<email>", self.formatException(record.exc_info))
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
_HANDLER: _JsonStreamHandler | None = None
_COLLAPSE: CollapseFilter | None = None
_FLUSH_EVERY_S = 5.0


def flush_collapsed(force: bool = False) -> None:
    """Write the "(repeated) N" summary of every collapse window that has closed (all of them
    with `force`, as at shutdown), straight to the handler so the filter cannot drop them."""
    handler, collapse = _HANDLER, _COLLAPSE
    if handler is None or collapse is None:
        return
    for record in collapse.summaries(force=force):
        handler.emit(record)


def shutdown() -> None:
    """Flush every pending collapse summary; run at exit and by the entry points when they stop."""
    flush_collapsed(force=True)


def _flush_loop() -> None:
    while not threading.Event().wait(_FLUSH_EVERY_S):
        flush_collapsed()


def recent_lines(since_s: float) -> tuple[list[str], bool]:
    """This process's WARNING-or-worse log lines of the last `since_s` seconds (at most one hour,
    at most 2000 lines), oldest first, each the JSON line as written; and whether older lines
    inside the window were already dropped from the bounded buffer."""
    return RECENT.lines(since_s)


def recent_records(since_s: float) -> list[dict[str, Any]]:
    """The same records as `recent_lines`, parsed: `since_s` is a duration in seconds counted
    back from now (e.g. 3600 for the last hour), not a timestamp."""
    return [json.loads(line) for line in RECENT.lines(since_s)[0]]


def configure(
    service: str, level: str = "INFO", collapse_window_s: float = 60.0, stream: IO[str] | None = None
) -> None:
    """Route every logger (ours, grpc's, uvicorn's) to one JSON stream on stderr. Identical
    WARNING-or-worse signatures collapse to one line per window (`collapse_window_s`) and a
    "(repeated) N" summary that is always written, at the latest at exit; every signature is
    also kept (with counts) for the ops page, and the WARNING-or-worse lines as written are kept
    in a bounded ring buffer (`recent_records`) for Diagnose."""
    global _HANDLER, _COLLAPSE
    if _HANDLER is not None:
        shutdown()  # a reconfigured process keeps the counts of the old configuration
    else:
        atexit.register(shutdown)
        threading.Thread(target=_flush_loop, name="log-collapse-flush", daemon=True).start()
    handler = _JsonStreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    collapse = CollapseFilter(collapse_window_s)
    handler.addFilter(collapse)
    _HANDLER, _COLLAPSE = handler, collapse
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
