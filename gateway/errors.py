"""HTTP errors with a reason code: `{"error": {"reason", "message", "request_id"}}`.

gRPC status codes map to HTTP statuses here, once, so every route answers failures the same way.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from pydantic import BaseModel, ConfigDict, Field
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
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.headers = headers or {}
        self.details = details or {}
        self.detail = detail  # an object `detail` instead of the message (usage-limit 429s)

    @classmethod
    def from_remote(cls, error: RemoteError, backend: str) -> ApiError:
        status = GRPC_TO_HTTP.get(error.code, 502)
        headers = {}
        if error.retry_after_s is not None and status in (429, 503):
            headers["Retry-After"] = str(max(1, round(error.retry_after_s)))
        if error.reason == "USAGE_LIMIT_REACHED":
            return cls(429, error.reason, error.message, headers=headers, detail=usage_limit_detail(error))
        return cls(status, error.reason, error.message, headers=headers, details={"backend": backend})


def _number(value: str | None) -> float | int | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return int(number) if number.is_integer() else number


def usage_limit_detail(error: RemoteError) -> dict[str, Any]:
    """The 429 `detail` the frontend's subscription handler reads (docs/frontend-contract.md §1.4):
    strings for `error`/`message`, and `provider`, `usage_info`, `current_calls`, `limit`."""
    meta = error.metadata
    usage_type = meta.get("usageType", "calls")
    current = _number(meta.get("current"))
    usage_info: dict[str, Any] = {
        "provider": meta.get("provider", ""),
        "type": usage_type,
        "limit_key": meta.get("limitKey", ""),
        "current_calls": _number(meta.get("currentCalls")),
        "limit": _number(meta.get("limit")),
        "billing_period": meta.get("billingPeriod", ""),
    }
    if usage_type == "tokens":
        usage_info["current_tokens"] = current
    elif usage_type == "cost":
        usage_info["current_cost"] = current
    return {
        "error": "usage_limit_exceeded",
        "message": error.message,
        "provider": meta.get("provider", ""),
        "usage_info": usage_info,
        "current_calls": usage_info["current_calls"],
        "limit": usage_info["limit"],
    }


def error_body(
    reason: str, message: str, extra: dict[str, Any] | None = None, detail: dict[str, Any] | None = None
) -> dict[str, Any]:
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
    return {"error": body, "detail": message if detail is None else detail}


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(
        error_body(error.reason, error.message, error.details, error.detail), error.status, headers=error.headers
    )


class ErrorInfoBody(BaseModel):
    """The gateway's error object; routes may add fields (problems, backend, backends)."""

    model_config = ConfigDict(extra="allow")
    reason: str = Field(description="A stable UPPER_SNAKE code from libs/runtime/reasons.py")
    message: str
    request_id: str | None


class UsageLimitDetail(BaseModel):
    model_config = ConfigDict(extra="allow")
    error: str
    message: str
    provider: str
    usage_info: dict[str, Any]
    current_calls: float | None
    limit: float | None


class ErrorEnvelope(BaseModel):
    """Every error reply. `detail` is the message (a string the frontend shows), except in a
    usage-limit 429, where it is the object the frontend's subscription handler reads."""

    model_config = ConfigDict(extra="allow")
    error: ErrorInfoBody
    detail: str | UsageLimitDetail


_DESCRIPTIONS = {
    400: "Invalid content (reason REQUEST_INVALID and others)",
    401: "No valid Clerk session token (TOKEN_* reasons)",
    403: "Not the caller's resource (USER_MISMATCH)",
    404: "Unknown id",
    413: "Body over INKWELL_MAX_BODY_BYTES (BODY_TOO_LARGE)",
    422: "Invalid parameters or body (REQUEST_INVALID, with error.problems)",
    429: "A plan limit (USAGE_LIMIT_REACHED, object detail) or a rate limit",
    502: "A backend failed; `detail` says why",
    503: "A backend is not ready; Retry-After says when to retry",
    504: "A backend did not answer within the deadline",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route: the error envelope under each status it can return."""
    return {status: {"model": ErrorEnvelope, "description": _DESCRIPTIONS[status]} for status in statuses}


async def handle_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    if exc.status >= 500:  # a backend or dependency failed: one grouped line per signature
        route = getattr(request.scope.get("route"), "path", request.url.path)
        log.warning(
            f"request failed: {exc.message}", extra={"reason": exc.reason, "route": route, "status": exc.status}
        )
    return error_response(exc)
