"""Per-request context (request id, trace, verified identity) carried in contextvars.

Log records and outbound calls read it, so no function has to thread ids through arguments.
"""

from __future__ import annotations

import re
import secrets
import time
from contextvars import ContextVar
from dataclasses import dataclass, field

REQUEST_ID_HEADER = "x-request-id"
TRACEPARENT_HEADER = "traceparent"

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class Identity:
    """A verified caller: who the gateway vouched for in the internal identity token."""

    user_id: str
    session_id: str = ""
    org_id: str = ""
    audiences: tuple[str, ...] = ()
    expires_at: float = 0.0


@dataclass
class RequestContext:
    request_id: str
    trace_id: str
    span_id: str = field(default_factory=lambda: secrets.token_hex(8))
    identity: Identity | None = None
    deadline_at: float | None = None  # time.monotonic() by which the caller wants an answer

    def remaining(self) -> float | None:
        """Seconds the caller has left (None: it set no deadline)."""
        return None if self.deadline_at is None else max(0.0, self.deadline_at - time.monotonic())

    def traceparent(self) -> str:
        """W3C traceparent for the next hop (this hop's span as parent)."""
        return f"00-{self.trace_id}-{self.span_id}-01"


current: ContextVar[RequestContext | None] = ContextVar("inkwell_request_context", default=None)


def new_request_id() -> str:
    return secrets.token_hex(8)


def sanitize_request_id(value: str | None) -> str:
    """Keep a caller's request id only when it is short and harmless in logs."""
    if value and _SAFE_REQUEST_ID.match(value):
        return value
    return new_request_id()


def parse_traceparent(value: str | None) -> str | None:
    """Return the trace id of a valid W3C traceparent, else None."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if not match or match.group(1) == "0" * 32:
        return None
    return match.group(1)


def start(
    request_id: str | None = None, traceparent: str | None = None, timeout_s: float | None = None
) -> RequestContext:
    """Begin a request context from inbound headers/metadata (and the caller's deadline, if it
    set one) and make it current."""
    ctx = RequestContext(
        request_id=sanitize_request_id(request_id),
        trace_id=parse_traceparent(traceparent) or secrets.token_hex(16),
        deadline_at=None if timeout_s is None else time.monotonic() + max(0.0, timeout_s),
    )
    current.set(ctx)
    return ctx


def get() -> RequestContext | None:
    return current.get()
