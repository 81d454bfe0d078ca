"""Header size caps, checked before routing so an oversized token is never forwarded to auth.

A session token over `max_token_bytes` (in `Authorization` or the `__session` cookie) is refused
with 401 TOKEN_TOO_LARGE; request headers over `max_header_bytes` in all with 431
HEADERS_TOO_LARGE. Without this, a 5 MB Authorization header reached the auth service and came
back as gRPC's "message larger than max" (503), after costing the gateway 130 MB.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import ApiError, error_response

log = logging.getLogger("inkwell.gateway.auth")

SESSION_COOKIE = b"__session="
TOO_LARGE_CHALLENGE = 'Bearer realm="inkwell", error="invalid_token", error_description="TOKEN_TOO_LARGE"'


def _session_cookie_bytes(cookie: bytes) -> int:
    for part in cookie.split(b";"):
        part = part.strip()
        if part.startswith(SESSION_COOKIE):
            return len(part) - len(SESSION_COOKIE)
    return 0


class HeaderLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_header_bytes: int, max_token_bytes: int) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes
        self.max_token_bytes = max_token_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        total = 0
        token_bytes = 0
        for name, value in scope["headers"]:
            total += len(name) + len(value) + 4  # ": " and CRLF, as on the wire
            if name == b"authorization":
                token_bytes = max(token_bytes, len(value.split(b" ", 1)[-1].strip()))
            elif name == b"cookie" and len(value) > self.max_token_bytes:
                token_bytes = max(token_bytes, _session_cookie_bytes(value))
        error = None
        if token_bytes > self.max_token_bytes:
            error = ApiError(
                401,
                "TOKEN_TOO_LARGE",
                f"the session token is {token_bytes} bytes; the limit is {self.max_token_bytes}",
                headers={"WWW-Authenticate": TOO_LARGE_CHALLENGE},
            )
        elif total > self.max_header_bytes:
            error = ApiError(
                431,
                "HEADERS_TOO_LARGE",
                f"the request headers are {total} bytes; the limit is {self.max_header_bytes}",
            )
        if error is None:
            await self.app(scope, receive, send)
            return
        log.warning(
            "request refused before routing",
            extra={"reason": error.reason, "route": scope.get("path", "?")[:100], "status": error.status},
        )
        await error_response(error)(scope, receive, send)
