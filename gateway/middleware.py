"""Pure ASGI middleware: request context, identity-header stripping, and last-resort errors.

Identity never comes from a client header: any inbound header that looks like one is removed
before routing, so no handler can read it by mistake.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.runtime import context

log = logging.getLogger("inkwell.gateway")

IDENTITY_HEADERS = frozenset(
    {
        b"x-user-id",
        b"x-user",
        b"x-user-email",
        b"x-email",
        b"x-forwarded-user",
        b"x-forwarded-email",
        b"x-forwarded-preferred-username",
        b"x-remote-user",
        b"remote-user",
        b"x-auth-user",
        b"x-auth-request-user",
        b"x-auth-request-email",
        b"x-clerk-user-id",
        b"x-clerk-auth-status",
        b"x-clerk-auth-token",
        b"x-inkwell-identity",
        b"x-internal-identity",
        b"x-org-id",
    }
)
IDENTITY_PREFIXES = (b"x-clerk-", b"x-auth-", b"x-inkwell-")


def _is_identity_header(name: bytes) -> bool:
    return name in IDENTITY_HEADERS or name.startswith(IDENTITY_PREFIXES)


class RequestContextMiddleware:
    """Starts the request context, strips identity headers, echoes x-request-id, and turns an
    unhandled exception into a JSON 500 with a reason code (inside CORS, so it keeps CORS headers)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = traceparent = None
        headers = []
        for name, value in scope["headers"]:
            if _is_identity_header(name):
                continue
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
            elif name == b"traceparent":
                traceparent = value.decode("latin-1")
            headers.append((name, value))
        scope["headers"] = headers
        ctx = context.start(request_id, traceparent)
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", ctx.request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception(
                "unhandled error",
                extra={"reason": "INTERNAL_DEFECT", "route": _route(scope), "method": scope["method"]},
            )
            if response_started:
                raise
            body = json.dumps(
                {
                    "error": {
                        "reason": "INTERNAL_DEFECT",
                        "message": "internal error; the gateway log has the details under this request id",
                        "request_id": ctx.request_id,
                    }
                }
            ).encode()
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})


def _route(scope: Scope) -> str:
    route: Any = scope.get("route")
    return getattr(route, "path", None) or scope.get("path", "?")
