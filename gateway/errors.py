"""HTTP errors with a reason code: `{"error": {"reason", "message", "request_id"}}`.

gRPC status codes map to HTTP statuses here, once, so every route answers failures the same way.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse

from libs.runtime import context
from libs.runtime.errors import RemoteError

log = logging.getLogger("inkwell.gateway")

GRPC_TO_HTTP = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.headers = headers or {}
        self.details = details or {}

    @classmethod
    def from_remote(cls, error: RemoteError, backend: str) -> ApiError:
        status = GRPC_TO_HTTP.get(error.code, 502)
        headers = {}
        if error.retry_after_s is not None and status in (429, 503):
            headers["Retry-After"] = str(max(1, round(error.retry_after_s)))
        return cls(status, error.reason, error.message, headers=headers, details={"backend": backend})


def error_body(reason: str, message: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    ctx = context.get()
    body: dict[str, Any] = {
        "reason": reason,
        "message": message,
        "request_id": ctx.request_id if ctx else None,
    }
    if extra:
        body.update(extra)
    # `detail` (a string) is what the frontend's HTTP client shows and how it tells an application
    # error from an outage (a 502 with a string detail does not trip its circuit breaker).
    return {"error": body, "detail": message}


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error_body(error.reason, error.message, error.details), error.status, headers=error.headers)


async def handle_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    if exc.status >= 500:  # a backend or dependency failed: one grouped line per signature
        route = getattr(request.scope.get("route"), "path", request.url.path)
        log.warning(
            f"request failed: {exc.message}", extra={"reason": exc.reason, "route": route, "status": exc.status}
        )
    return error_response(exc)
