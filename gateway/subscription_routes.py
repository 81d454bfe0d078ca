"""/api/subscription: the plan, its limits, usage, cost, trends and alerts of the calling user.

Usage comes from the LLM service's per-user records (GetUsage, with the caller's identity), so
another user's data cannot even be asked for; a path user other than the caller is a 403. Every
route that reads the current period's usage also raises the alerts it crosses (gateway/workflow/alerts.py).
"""

import re
from typing import Annotated, Any

import grpc
from fastapi import APIRouter, Path, Query, Request
from google.protobuf import timestamp_pb2
from pydantic import WithJsonSchema

from gateway.errors import ApiError, responses
from gateway.state import CurrentUser, GatewayState
from gateway.workflow import subscriptions
from gateway.workflow.alerts import crossings
from inkwell.llm.v1 import llm_service_pb2 as llm_pb
from inkwell.llm.v1 import llm_service_pb2_grpc as llm_grpc
from libs.plans import usage_by_key
from libs.runtime.client import call_metadata, call_timeout
from libs.runtime.errors import from_rpc_error
from libs.runtime.protoenum import from_enum

USAGE_TIMEOUT_S = 5.0  # cap of one GetUsage call; less when the request has less time left

router = APIRouter(prefix="/api/subscription", tags=["subscription"])
MAX_ALERT_ID = 2**63 - 1
READ_RESPONSES = responses(401, 403, 422, 502)


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
            "total_latency_ms": r.total_latency_ms,
        }
        for r in reply.rows
    ]


async def _period_rows(request: Request, user: Any) -> tuple[str, list[dict[str, Any]]]:
    """This period's usage rows; the alerts they cross are raised (persisted) on the way."""
    state = GatewayState.of(request)
    period = subscriptions.current_period()
    rows = await _usage(request, user.internal_token, subscriptions.period_bounds(period)[0])
    plan = state.plans.for_user(user.user_id)
    found = crossings(usage_by_key(rows, state.plans), plan.limits)
    await state.alerts.raise_alerts(user.user_id, period, found)
    return period, rows


@router.get("/status/{user_id}", summary="The caller's plan and limits", responses=READ_RESPONSES)
async def status(user_id: str, user: CurrentUser, request: Request) -> dict[str, Any]:
    """`active` is true for every configured plan: plans come from INKWELL_PLANS_FILE and carry no
    payment or expiry state. Whether models can be called is `can_use_api` (+ `reason`)."""
    _same_user(user_id, user)
    state = GatewayState.of(request)
    plan = state.plans.for_user(user.user_id)
    period, rows = await _period_rows(request, user)
    stats = subscriptions.usage_stats(rows, state.plans, plan, period)
    reason = subscriptions.plan_wide_limit_reached(plan, rows, state.plans)
    data: dict[str, Any] = {
        "active": plan.key in state.plans.plans,
        "plan": plan.tier,
        "plan_key": plan.key,
        "tier": plan.tier,
        "can_use_api": reason is None,
        "limits": dict(plan.limits),
        "usage_status": stats["usage_status"],
    }
    if reason is not None:
        data["reason"] = reason
    return {"success": True, "data": data}


@router.get(
    "/usage/{user_id}", summary="The caller's usage this billing period, per provider", responses=READ_RESPONSES
)
async def usage(user_id: str, user: CurrentUser, request: Request) -> dict[str, Any]:
    _same_user(user_id, user)
    state = GatewayState.of(request)
    period, rows = await _period_rows(request, user)
    alerts = await state.alerts.list(user.user_id, period)
    plan = state.plans.for_user(user.user_id)
    return {"success": True, "data": subscriptions.usage_stats(rows, state.plans, plan, period, alerts)}


@router.get(
    "/dashboard/{user_id}",
    summary="Usage, cost, trends, limits, alerts, projections and summary",
    responses=READ_RESPONSES,
)
async def dashboard(
    user_id: str,
    user: CurrentUser,
    request: Request,
    billing_period: Annotated[
        str | None,
        WithJsonSchema({"type": "string", "pattern": r"^(\d{4}-(0[1-9]|1[0-2]))?$"}),
        Query(description="YYYY-MM; absent or empty: all time"),
    ] = None,
) -> dict[str, Any]:
    _same_user(user_id, user)
    if billing_period == "":
        billing_period = None
    if billing_period is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", billing_period):
        raise ApiError(422, "REQUEST_INVALID", "billing_period is not YYYY-MM")
    state = GatewayState.of(request)
    await _period_rows(request, user)
    rows = await _usage(request, user.internal_token)
    alerts = await state.alerts.list(user.user_id)
    return {"success": True, "data": subscriptions.dashboard(rows, state.plans, user.user_id, billing_period, alerts)}


@router.get(
    "/alerts/{user_id}", summary="Alerts when usage crosses 80 % and 100 % of a limit", responses=READ_RESPONSES
)
async def alerts(
    user_id: str,
    user: CurrentUser,
    request: Request,
    unread_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    """Every alert of the caller, newest first; an alert stays until it is marked read."""
    _same_user(user_id, user)
    state = GatewayState.of(request)
    await _period_rows(request, user)
    found = await state.alerts.list(user.user_id)
    unread = [a for a in found if not a["is_read"]]
    shown = unread if unread_only else found
    return {"success": True, "data": {"alerts": shown[:limit], "total": len(found), "unread_count": len(unread)}}


@router.post(
    "/alerts/{alert_id}/mark-read",
    summary="Mark one of the caller's alerts as read",
    responses=responses(401, 404, 422),
)
async def mark_read(
    alert_id: Annotated[int, Path(ge=1, le=MAX_ALERT_ID)], user: CurrentUser, request: Request
) -> dict[str, Any]:
    alert = await GatewayState.of(request).alerts.mark_read(user.user_id, alert_id)
    if alert is None:
        raise ApiError(404, "ALERT_NOT_FOUND", f"alert {alert_id} is not one of your alerts")
    return {"success": True, "data": {"id": alert["id"], "is_read": True, "read_at": alert["read_at"]}}
