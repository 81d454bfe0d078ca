"""/api/subscription: the plan, its limits, usage, cost, trends and alerts of the calling user.

Usage comes from the LLM service's per-user records (GetUsage, with the caller's identity), so
another user's data cannot even be asked for; a path user other than the caller is a 403.
"""

import datetime as dt
import re
from typing import Annotated, Any

import grpc
from fastapi import APIRouter, Query, Request
from google.protobuf import timestamp_pb2

from gateway.errors import ApiError
from gateway.state import CurrentUser, GatewayState
from gateway.workflow import subscriptions
from inkwell.llm.v1 import llm_service_pb2 as llm_pb
from inkwell.llm.v1 import llm_service_pb2_grpc as llm_grpc
from libs.runtime.client import call_metadata, call_timeout
from libs.runtime.errors import from_rpc_error
from libs.runtime.protoenum import from_enum

USAGE_TIMEOUT_S = 5.0  # cap of one GetUsage call; less when the request has less time left

router = APIRouter(prefix="/api/subscription", tags=["subscription"])


def _same_user(path_user: str, user: Any) -> None:
    if path_user != user.user_id:
        raise ApiError(403, "USER_MISMATCH", "you can only read your own subscription")


async def _usage(request: Request, token: str, since: float = 0.0) -> list[dict[str, Any]]:
    state = GatewayState.of(request)
    assert state.llm_channel is not None
    stub = llm_grpc.LlmServiceStub(state.llm_channel)
    since_ts = timestamp_pb2.Timestamp(seconds=int(since))
    try:
        reply = await stub.GetUsage(
            llm_pb.GetUsageRequest(since=since_ts), timeout=call_timeout(USAGE_TIMEOUT_S), metadata=call_metadata(token)
        )
    except grpc.aio.AioRpcError as exc:
        remote = from_rpc_error(exc)
        raise ApiError(502, "USAGE_UNAVAILABLE", f"usage records are unavailable ({remote.reason})") from None
    return [
        {
            "day": r.day,
            "provider": r.provider,
            "model": r.model,
            "outcome": from_enum(llm_pb.UsageOutcome, r.outcome, lower=True),
            "calls": r.calls,
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens,
        }
        for r in reply.rows
    ]


@router.get("/status/{user_id}", summary="The caller's plan and limits")
async def status(user_id: str, user: CurrentUser, request: Request) -> dict[str, Any]:
    _same_user(user_id, user)
    state = GatewayState.of(request)
    plan = state.plans.for_user(user.user_id)
    rows = await _usage(request, user.internal_token, subscriptions.period_bounds(subscriptions.current_period())[0])
    stats = subscriptions.usage_stats(rows, state.plans, plan, subscriptions.current_period())
    return {
        "success": True,
        "data": {
            "active": True,
            "plan": plan.key,
            "tier": plan.tier,
            "can_use_api": stats["usage_status"] != "limit_reached",
            "limits": dict(plan.limits),
            "usage_status": stats["usage_status"],
        },
    }


@router.get("/usage/{user_id}", summary="The caller's usage this billing period, per provider")
async def usage(user_id: str, user: CurrentUser, request: Request) -> dict[str, Any]:
    _same_user(user_id, user)
    state = GatewayState.of(request)
    period = subscriptions.current_period()
    rows = await _usage(request, user.internal_token, subscriptions.period_bounds(period)[0])
    return {
        "success": True,
        "data": subscriptions.usage_stats(rows, state.plans, state.plans.for_user(user.user_id), period),
    }


@router.get("/dashboard/{user_id}", summary="Usage, cost, trends, limits, alerts, projections and summary")
async def dashboard(
    user_id: str,
    user: CurrentUser,
    request: Request,
    billing_period: Annotated[str | None, Query(description="YYYY-MM")] = None,
) -> dict[str, Any]:
    _same_user(user_id, user)
    if billing_period is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", billing_period):
        raise ApiError(422, "REQUEST_INVALID", f"billing_period {billing_period[:20]!r} is not YYYY-MM")
    state = GatewayState.of(request)
    rows = await _usage(request, user.internal_token)
    read = await state.store.read_alerts(user.user_id)
    return {"success": True, "data": subscriptions.dashboard(rows, state.plans, user.user_id, billing_period, read)}


@router.get("/alerts/{user_id}", summary="Alerts when usage crosses 80 % and 100 % of a limit")
async def alerts(
    user_id: str,
    user: CurrentUser,
    request: Request,
    unread_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    _same_user(user_id, user)
    state = GatewayState.of(request)
    period = subscriptions.current_period()
    rows = await _usage(request, user.internal_token, subscriptions.period_bounds(period)[0])
    stats = subscriptions.usage_stats(rows, state.plans, state.plans.for_user(user.user_id), period)
    found = subscriptions.alerts(stats, period, user.user_id, await state.store.read_alerts(user.user_id))
    unread = [a for a in found if not a["is_read"]]
    shown = unread if unread_only else found
    return {"success": True, "data": {"alerts": shown[:limit], "total": len(found), "unread_count": len(unread)}}


@router.post("/alerts/{alert_id}/mark-read", summary="Mark an alert as read")
async def mark_read(alert_id: int, user: CurrentUser, request: Request) -> dict[str, Any]:
    await GatewayState.of(request).store.mark_alert_read(user.user_id, alert_id)
    return {
        "success": True,
        "data": {
            "id": alert_id,
            "is_read": True,
            "read_at": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        },
    }
