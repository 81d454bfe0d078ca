"""/api/content-planning/monitoring: real numbers from the gateway's own request accounting for
the calling user over the last 5 minutes, plus backend readiness. Never a 5xx: the frontend
blocks every request for 5-60 s after one. Both routes are polled, so an answer is reused for
the same user for INKWELL_READ_CACHE_TTL_S (1 s): `timestamp` says when it was computed."""

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request

from gateway.state import CurrentUser, GatewayState

router = APIRouter(prefix="/api/content-planning/monitoring", tags=["monitoring"])

ICONS = {"healthy": "🟢", "warning": "🟡", "critical": "🔴"}


async def _numbers(user_id: str, request: Request) -> dict[str, Any]:
    state = GatewayState.of(request)
    stats = state.accounting.stats(user_id)
    backends = await state.backends.readiness(state.settings.readiness_timeout_s)
    status = stats.status
    if status == "healthy" and any(v != "SERVING" for v in backends.values()):
        status = "warning"
    return {
        "status": status,
        "icon": ICONS[status],
        "recent_requests": stats.requests,
        "recent_errors": stats.errors,
        "error_rate": round(100 * stats.error_rate, 2),
        "timestamp": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        "window_seconds": int(state.accounting.window_s),
        "backends": backends,
        "index_enqueue_failures": dict(state.accounting.enqueue_failures),
    }


@router.get("/lightweight-stats", summary="Your requests, errors and error rate over the last 5 minutes")
async def lightweight_stats(user: CurrentUser, request: Request) -> dict[str, Any]:
    async def compute() -> dict[str, Any]:
        return {
            "status": "success",
            "success": True,
            "message": "Lightweight monitoring statistics retrieved successfully",
            "data": await _numbers(user.user_id, request),
        }

    answer: dict[str, Any] = await GatewayState.of(request).read_cache.answer(user.user_id, "stats", compute)
    return answer


@router.get("/health", summary="System health from your recent requests and the backends' readiness")
async def health(user: CurrentUser, request: Request) -> dict[str, Any]:
    async def compute() -> dict[str, Any]:
        numbers = await _numbers(user.user_id, request)
        cache = GatewayState.of(request).session_cache
        lookups = cache.hits + cache.misses
        return {
            "status": "success",
            "success": True,
            "message": f"System health: {numbers['status']}",
            "data": {
                "system_health": numbers["status"],
                "icon": numbers["icon"],
                "api_performance": {k: numbers[k] for k in ("recent_requests", "recent_errors", "error_rate")},
                "cache_performance": {
                    "hits": cache.hits,
                    "misses": cache.misses,
                    "hit_rate": round(100 * cache.hits / lookups, 2) if lookups else 0.0,
                },
                "backends": numbers["backends"],
                "timestamp": numbers["timestamp"],
            },
        }

    answer: dict[str, Any] = await GatewayState.of(request).read_cache.answer(user.user_id, "health", compute)
    return answer
