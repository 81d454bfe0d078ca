"""The OpenAPI document, made to describe the real error replies.

FastAPI documents a 422 whose `detail` is a list; the gateway's 422 (like every error) is the
envelope `{"error": {"reason", "message", "request_id", ...}, "detail": "<message>"}` with the
problems under `error.problems`, because the frontend shows a string `detail`. This rewrites every
422 to that shape and adds the statuses every protected route can return: 401 (session token),
503/504 (the auth service unavailable or slow), and 413 on routes with a body. Route-specific
statuses (400, 403, 404, 429, 502) are declared on the routes with `gateway.errors.responses`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from gateway.errors import responses

ENVELOPE_REF = {"$ref": "#/components/schemas/ErrorEnvelope"}
# Statuses of routes whose modules are shared with other work (declared here, not on the route).
ROUTE_STATUSES: dict[tuple[str, str], tuple[int, ...]] = {
    ("get", "/readyz"): (503,),
    ("get", "/api/today-workflow"): (404, 502),
    ("get", "/api/today-workflow/status"): (502,),
    ("post", "/api/today-workflow/generate"): (502,),
    ("post", "/api/today-workflow/tasks/{task_id}/status"): (404, 502),
    ("get", "/ops"): (403,),
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ENVELOPE_REF}}}


def install_openapi(app: FastAPI) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        descriptions = {
            status: spec["description"]
            for status, spec in responses(*(400, 401, 403, 404, 413, 422, 502, 503, 504)).items()
        }
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                answers = operation.setdefault("responses", {})
                for status in ROUTE_STATUSES.get((method, path), ()):
                    answers.setdefault(str(status), _error(descriptions[status]))
                if "422" in answers or operation.get("parameters") or "requestBody" in operation:
                    answers["422"] = _error(descriptions[422])
                if path.startswith("/api/"):
                    operation["security"] = [{"ClerkSession": []}]
                    for status in (401, 503, 504):
                        answers.setdefault(str(status), _error(descriptions[status]))
                if "requestBody" in operation:
                    answers.setdefault("413", _error(descriptions[413]))
        schema.setdefault("components", {})["securitySchemes"] = {
            "ClerkSession": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "Clerk session"}
        }
        components = schema["components"].setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = build  # type: ignore[method-assign]
