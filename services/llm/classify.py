"""The one table that classifies upstream results, and what the router does with each class.

| class             | examples                                            | action                                   |
|-------------------|-----------------------------------------------------|------------------------------------------|
| TRANSIENT         | connection error, timeout, 408, 409, 429, 5xx       | retry the same target (backoff,          |
|                   |                                                     | Retry-After) inside the deadline         |
| MODEL_UNAVAILABLE | 404 on a live route, 400 "not supported by any      | cache as unavailable for that route for  |
|                   | provider"                                           | minutes; next candidate; never retried   |
| ROUTE_NOT_FOUND   | 404 and GET {base_url}/models is 404 too            | configuration error naming the base URL; |
|                   |                                                     | the provider is not called               |
| CAPABILITY        | 400/422 about response_format / json_schema          | remember per model and route; next shape |
| CREDENTIALS       | 401, 403                                            | configuration error for that provider    |
| BAD_REQUEST       | any other 4xx                                       | next candidate (a defect on our side)    |
| OUTPUT            | unparsable or schema-invalid JSON                   | repair, one re-ask, then next candidate  |
| DEADLINE          | the call's deadline ran out                          | stop                                     |
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import openai


class ErrorClass(StrEnum):
    TRANSIENT = "TRANSIENT"
    MODEL_UNAVAILABLE = "MODEL_UNAVAILABLE"
    ROUTE_NOT_FOUND = "ROUTE_NOT_FOUND"
    CAPABILITY = "CAPABILITY"
    CREDENTIALS = "CREDENTIALS"
    BAD_REQUEST = "BAD_REQUEST"
    OUTPUT = "OUTPUT"
    DEADLINE = "DEADLINE"
    NOT_CONFIGURED = "NOT_CONFIGURED"
    NO_LOCAL_MODEL = "NO_LOCAL_MODEL"


TRANSIENT_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
MODEL_UNAVAILABLE_MARKERS = (
    "not supported by any provider",
    "model_not_supported",
    "model not found",
    "does not exist",
    "is not a chat model",
    "unknown model",
)
CAPABILITY_MARKERS = ("response_format", "json_schema", "json_object", "structured output", "guided")


@dataclass
class UpstreamError(Exception):
    """A classified upstream failure, with what a log line and an Attempt need."""

    error_class: ErrorClass
    detail: str
    http_status: int = 0
    retry_after_s: float | None = None

    def __str__(self) -> str:
        return f"{self.error_class.value} ({self.http_status or '-'}): {self.detail}"


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _body_text(error: openai.APIStatusError) -> str:
    try:
        return error.response.text[:500]
    except Exception:
        return str(error.message)[:500]


def classify(error: BaseException) -> UpstreamError:
    if isinstance(error, UpstreamError):
        return error
    if isinstance(error, openai.APITimeoutError):
        return UpstreamError(ErrorClass.TRANSIENT, "the provider did not answer in time")
    if isinstance(error, openai.APIConnectionError):
        return UpstreamError(ErrorClass.TRANSIENT, f"connection failed: {error.message}"[:300])
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        body = _body_text(error)
        lowered = body.lower()
        if status in TRANSIENT_STATUSES or status >= 500:
            return UpstreamError(ErrorClass.TRANSIENT, body, status, _retry_after(error.response.headers))
        if status in (401, 403):
            return UpstreamError(ErrorClass.CREDENTIALS, body, status)
        if status == 404:
            return UpstreamError(ErrorClass.MODEL_UNAVAILABLE, body or "Not Found", status)
        if any(marker in lowered for marker in MODEL_UNAVAILABLE_MARKERS):
            return UpstreamError(ErrorClass.MODEL_UNAVAILABLE, body, status)
        if status in (400, 422) and any(marker in lowered for marker in CAPABILITY_MARKERS):
            return UpstreamError(ErrorClass.CAPABILITY, body, status)
        return UpstreamError(ErrorClass.BAD_REQUEST, body, status)
    return UpstreamError(ErrorClass.BAD_REQUEST, f"{type(error).__name__}: {error}"[:300])
