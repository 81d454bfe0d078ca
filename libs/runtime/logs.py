"""JSON log lines with the service name, request id and trace id on every line.

Never pass tokens, keys or e-mail addresses as log fields: the formatter writes what it is given.
"""

from __future__ import annotations

import json
import logging
import sys
import time
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


SIGNATURES = SignatureLog()


def configure(service: str, level: str = "INFO") -> None:
    """Route every logger (ours, grpc's, uvicorn's) to one JSON stream on stderr. Identical
    WARNING-or-worse signatures collapse to one line per minute with a count; every signature is
    also kept (with counts) for the ops page."""
    handler = logging.StreamHandler(sys.stderr)
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
