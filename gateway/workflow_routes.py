"""/api/today-workflow: the frontend's daily plan, in the shapes its store reads.

Workflow ids start with "daily-" (the frontend only syncs those with the server); a fallback plan
says so (generation_mode "controlled_fallback", fallbackUsed, degraded_reason); a missing plan is a
404 with a reason; application failures are 502 with a string `detail`, which the frontend shows
without tripping its global circuit breaker.
"""

import datetime as dt
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gateway.errors import ApiError
from gateway.state import CurrentUser, GatewayState
from gateway.workflow.pillars import frontend_action_type
from gateway.workflow.store import Plan, Task

router = APIRouter(prefix="/api/today-workflow", tags=["today workflow"])

DateParam = Annotated[str | None, Query(description="YYYY-MM-DD (UTC); default today")]
DONE = ("completed", "skipped")


def _date(value: str | None) -> str:
    if value is None:
        return dt.datetime.now(dt.UTC).date().isoformat()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ApiError(422, "REQUEST_INVALID", f"date {value[:20]!r} is not YYYY-MM-DD")
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise ApiError(422, "REQUEST_INVALID", f"date {value!r} is not a calendar date") from None
    return value


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat().replace("+00:00", "Z")


def task_payload(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "pillarId": task.pillar_id,
        "title": task.title,
        "description": task.description,
        "status": task.status,
        "priority": task.priority,
        "estimatedTime": task.estimated_time,
        "dependencies": task.dependencies,
        "actionUrl": task.action_url,
        "actionType": frontend_action_type(task.action_type),
        "metadata": task.metadata,
        "enabled": task.enabled,
    }


def provenance_summary(plan: Plan) -> dict[str, Any]:
    breakdown: dict[str, int] = {}
    for task in plan.tasks:
        source = str(task.metadata.get("source", plan.generation_mode))
        breakdown[source] = breakdown.get(source, 0) + 1
    return {
        "generationMode": plan.generation_mode,
        "committeeAgentCount": 0,
        "fallbackUsed": plan.fallback_used,
        "taskSourceBreakdown": breakdown,
    }


def schedule_status(date: str, plan: Plan | None) -> dict[str, Any]:
    return {
        "date": date,
        "generated": plan is not None,
        "scheduled_run_completed": False,
        "source": plan.source if plan else None,
        "created_at": _iso(plan.created_at) if plan else None,
    }


def workflow_payload(plan: Plan) -> dict[str, Any]:
    tasks = plan.tasks
    done = sum(1 for t in tasks if t.status in DONE)
    if tasks and done == len(tasks):
        status = "completed"
    elif done or any(t.status == "in_progress" for t in tasks):
        status = "in_progress"
    else:
        status = "not_started"
    current = next((n for n, t in enumerate(tasks) if t.status not in DONE), 0)
    summary = provenance_summary(plan)
    return {
        "success": True,
        "data": {
            "workflow": {
                "id": plan.id,
                "date": plan.date,
                "userId": plan.user_id,
                "tasks": [task_payload(t) for t in tasks],
                "currentTaskIndex": current,
                "completedTasks": done,
                "totalTasks": len(tasks),
                "workflowStatus": status,
                "totalEstimatedTime": sum(t.estimated_time for t in tasks),
                "actualTimeSpent": 0,
                "provenanceSummary": summary,
            },
            "plan": {
                "id": plan.id,
                "date": plan.date,
                "source": plan.source,
                "generation_mode": plan.generation_mode,
                "fallback_used": plan.fallback_used,
                "degraded_reason": plan.degraded_reason,
                "provenance": plan.provenance,
                "provenance_summary": summary,
                "created_at": _iso(plan.created_at),
            },
            "schedule_status": schedule_status(plan.date, plan),
        },
        "timestamp": _iso(dt.datetime.now(dt.UTC)),
        "user_id": plan.user_id,
    }


async def _guard(coro: Any) -> Any:
    try:
        return await coro
    except ApiError:
        raise
    except Exception as exc:  # the database is a dependency: report it as an application failure
        raise ApiError(502, "WORKFLOW_STORE_FAILED", f"the workflow store failed: {type(exc).__name__}") from exc


async def _todays_plan(request: Request, user_id: str, day: str) -> Plan | None:
    """The polled read: reused for `user_id` for INKWELL_READ_CACHE_TTL_S; their writes clear it."""
    state = GatewayState.of(request)
    plan: Plan | None = await state.read_cache.answer(user_id, ("plan", day), lambda: state.today.get(user_id, day))
    return plan


@router.get("", summary="Today's workflow (404 when none was generated for that date)")
async def get_workflow(
    user: CurrentUser, request: Request, date: DateParam = None, workflow_type: str | None = None
) -> JSONResponse:
    day = _date(date)
    plan = await _guard(_todays_plan(request, user.user_id, day))
    if plan is None:
        raise ApiError(404, "PLAN_NOT_FOUND", f"no workflow has been generated for {day}; POST /generate makes one")
    return JSONResponse(workflow_payload(plan))  # already JSON-safe: skip FastAPI's re-encoding


@router.get("/status", summary="Whether a workflow exists for the date (always 200)")
async def get_status(user: CurrentUser, request: Request, date: DateParam = None) -> dict[str, Any]:
    day = _date(date)
    plan = await _guard(_todays_plan(request, user.user_id, day))
    return {
        "success": True,
        "data": schedule_status(day, plan),
        "timestamp": _iso(dt.datetime.now(dt.UTC)),
        "user_id": user.user_id,
    }


@router.get("/progress", summary="What a running generation is doing")
async def get_progress(user: CurrentUser, request: Request, date: DateParam = None) -> dict[str, Any]:
    day = _date(date)
    return {"success": True, "progress": GatewayState.of(request).today.progress.get((user.user_id, day))}


@router.post("/generate", summary="Generate the day's workflow (idempotent per user and date)")
async def generate(
    user: CurrentUser, request: Request, date: DateParam = None, workflow_type: str | None = None
) -> dict[str, Any]:
    day = _date(date)
    plan = await _guard(GatewayState.of(request).today.generate(user.user_id, user.internal_token, day))
    return workflow_payload(plan)


class StatusUpdate(BaseModel):
    status: Literal["pending", "in_progress", "completed", "skipped", "dismissed"]
    completion_notes: str | None = Field(default=None, max_length=4000)


@router.post("/tasks/{task_id}/status", summary="Set a task's status (dismissed means skipped)")
async def set_task_status(task_id: str, body: StatusUpdate, user: CurrentUser, request: Request) -> dict[str, Any]:
    status = "skipped" if body.status == "dismissed" else body.status
    today = GatewayState.of(request).today
    updated = await _guard(today.set_status(user.user_id, user.internal_token, task_id, status, body.completion_notes))
    if updated is None:
        raise ApiError(404, "TASK_NOT_FOUND", "no such task for this user")
    task, _ = updated
    return {
        "success": True,
        "data": {
            "task": {
                "id": task.id,
                "pillarId": task.pillar_id,
                "status": task.status,
                "decided_at": _iso(task.decided_at),
            }
        },
    }
