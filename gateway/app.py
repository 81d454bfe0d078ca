"""The HTTP gateway: the web frontend's only entry point.

It verifies the Clerk session token once (through the auth service), then calls internal
services with the verified identity. Backends are reached over long-lived gRPC channels opened
at startup; every call carries a deadline.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway import index_routes, monitoring_routes, ops_routes, subscription_routes, workflow_routes
from gateway.accounting import AccountingMiddleware
from gateway.errors import ApiError, error_body, error_response, handle_api_error
from gateway.header_limits import HeaderLimitMiddleware
from gateway.middleware import RequestContextMiddleware
from gateway.ratelimit import FairShareMiddleware, RateLimited, handle_rate_limited
from gateway.settings import GatewaySettings
from gateway.state import CurrentUser, GatewayState

log = logging.getLogger("inkwell.gateway")


def create_app(settings: GatewaySettings) -> FastAPI:
    state = GatewayState(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.open()
        await state.open_database()
        assert state.outbox is not None
        state.outbox.start()
        _warm_up(app)
        if settings.loop_block_warn_ms > 0:  # after startup: only serving callbacks are judged
            state.loop_watch.start()
        log.info("gateway started", extra={"auth": settings.auth_address, "cors": list(settings.cors_origins)})
        try:
            yield
        finally:
            state.loop_watch.stop()
            await state.outbox.close()
            await state.backends.close()
            await state.engine.dispose()

    app = FastAPI(
        title="Inkwell gateway",
        version="0.1.0",
        description="HTTP API for the Inkwell web frontend. Every /api route needs a Clerk session token "
        "(Authorization: Bearer, or the __session cookie). Errors are "
        '`{"error": {"reason", "message", "request_id"}}` with a stable reason code.',
        lifespan=lifespan,
    )
    app.state.inkwell = state
    app.add_exception_handler(ApiError, handle_api_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(RateLimited, handle_rate_limited)
    # Added inner first: CORS wraps everything, so error replies carry CORS headers too.
    app.add_middleware(
        FairShareMiddleware,
        share=state.fair_share,
        sessions=state.session_cache,
        templates=lambda: app.openapi()["paths"],
    )
    app.add_middleware(AccountingMiddleware, accounting=state.accounting, on_write=state.read_cache.forget)
    app.add_middleware(
        HeaderLimitMiddleware,
        max_header_bytes=settings.max_header_bytes,
        max_token_bytes=settings.max_token_bytes,
    )
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_credentials=True,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["authorization", "content-type", "x-request-id", "traceparent"],
        expose_headers=["x-request-id", "retry-after"],
        max_age=600,
    )

    @app.get("/healthz", tags=["ops"], summary="Liveness: the gateway process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], summary="Readiness of every backend; 503 names the ones not ready")
    async def readyz() -> JSONResponse:
        if state.draining:
            body = error_body("SHUTTING_DOWN", "the gateway is draining before it stops; requests are still served")
            return JSONResponse(body, 503, headers={"Retry-After": str(max(1, round(settings.drain_s)))})
        states = await state.backends.readiness(settings.readiness_timeout_s)
        not_ready = sorted(name for name, status in states.items() if status != "SERVING")
        if not_ready:
            body = error_body("BACKENDS_NOT_READY", f"not ready: {', '.join(not_ready)}")
            body["backends"] = states
            return JSONResponse(body, 503, headers={"Retry-After": "2"})
        return JSONResponse({"status": "ready", "backends": states})

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        # ~10 ms of CPU with every route's histograms: in a worker thread, not one loop callback
        return Response(await asyncio.to_thread(generate_latest), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/auth/me", tags=["auth"], summary="The verified principal of this session token")
    async def me(user: CurrentUser) -> dict[str, Any]:
        return {"user": user.principal}

    app.include_router(index_routes.router)
    app.include_router(workflow_routes.router)
    app.include_router(monitoring_routes.router)
    app.include_router(subscription_routes.router)
    app.include_router(ops_routes.router)

    return app


def _warm_up(app: FastAPI) -> None:
    """Build what FastAPI builds lazily on first use (each route's matching context, ~17 ms per
    route; the OpenAPI schema, ~90 ms) before serving, not on some user's request."""
    app.openapi()
    probe = {"type": "http", "method": "GET", "path": "/.warm-up", "root_path": "", "headers": []}
    for route in app.routes:
        route.matches(probe)


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    reason = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
    return error_response(ApiError(exc.status_code, reason, str(exc.detail), headers=dict(exc.headers or {})))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"field": ".".join(str(p) for p in err.get("loc", ())), "problem": err.get("msg", "")} for err in exc.errors()
    ]
    return error_response(ApiError(422, "REQUEST_INVALID", "the request is invalid", details={"problems": problems}))
