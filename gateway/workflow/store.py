"""Plans and tasks in the database: one plan per (user, day), tasks owned by their user."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.workflow import outbox_store
from gateway.workflow.db import plans, tasks
from gateway.workflow.documents import task_document


@dataclass
class Task:
    id: str
    pillar_id: str
    title: str
    description: str
    status: str
    priority: str
    estimated_time: int
    dependencies: list[str]
    action_url: str
    action_type: str
    metadata: dict[str, Any]
    enabled: bool = True
    decided_at: dt.datetime | None = None
    completion_notes: str | None = None


@dataclass
class Plan:
    id: str
    user_id: str
    date: str
    source: str
    generation_mode: str
    fallback_used: bool
    degraded_reason: str | None
    provenance: dict[str, Any]
    created_at: dt.datetime
    tasks: list[Task] = field(default_factory=list)


def plan_id(user_id: str, date: str) -> str:
    """Server plan ids start with "daily-": the frontend only syncs such workflows with the server."""
    return f"daily-{date}-{hashlib.sha256(user_id.encode()).hexdigest()[:12]}"


def _task(row: Any) -> Task:
    return Task(
        id=row.id,
        pillar_id=row.pillar_id,
        title=row.title,
        description=row.description,
        status=row.status,
        priority=row.priority,
        estimated_time=row.estimated_time,
        dependencies=list(row.dependencies or []),
        action_url=row.action_url,
        action_type=row.action_type,
        metadata=dict(row.metadata or {}),
        enabled=row.enabled,
        decided_at=row.decided_at,
        completion_notes=row.completion_notes,
    )


def _task_row(plan: Plan, t: Task, position: int) -> dict[str, Any]:
    """The tasks-table row of a new (never decided) task of `plan`."""
    return {
        "id": t.id,
        "plan_id": plan.id,
        "user_id": plan.user_id,
        "position": position,
        "pillar_id": t.pillar_id,
        "title": t.title[:255],
        "description": t.description,
        "status": t.status,
        "priority": t.priority,
        "estimated_time": t.estimated_time,
        "dependencies": t.dependencies,
        "action_url": t.action_url,
        "action_type": t.action_type,
        "metadata": t.metadata,
        "enabled": t.enabled,
        "decided_at": None,
        "completion_notes": None,
    }


class WorkflowStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def get(self, user_id: str, date: str) -> Plan | None:
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(select(plans).where(plans.c.user_id == user_id, plans.c.date == date))
            ).first()
            if row is None:
                return None
            task_rows = (
                await connection.execute(select(tasks).where(tasks.c.plan_id == row.id).order_by(tasks.c.position))
            ).all()
        return Plan(
            id=row.id,
            user_id=row.user_id,
            date=row.date,
            source=row.source,
            generation_mode=row.generation_mode,
            fallback_used=row.fallback_used,
            degraded_reason=row.degraded_reason,
            provenance=dict(row.provenance),
            created_at=row.created_at,
            tasks=[_task(t) for t in task_rows],
        )

    async def create(self, plan: Plan) -> Plan:
        """Insert the plan, its tasks and their index delivery (the outbox row) in one transaction;
        if another writer got there first, return theirs."""
        try:
            async with self.engine.begin() as connection:
                await connection.execute(
                    insert(plans).values(
                        id=plan.id,
                        user_id=plan.user_id,
                        date=plan.date,
                        source=plan.source,
                        generation_mode=plan.generation_mode,
                        fallback_used=plan.fallback_used,
                        degraded_reason=plan.degraded_reason,
                        provenance=plan.provenance,
                        created_at=plan.created_at,
                    )
                )
                if plan.tasks:
                    await connection.execute(
                        insert(tasks),
                        [_task_row(plan, t, n) for n, t in enumerate(plan.tasks)],
                    )
                    await outbox_store.enqueue(
                        connection,
                        plan.user_id,
                        "",
                        [task_document(plan.date, t) for t in plan.tasks],
                        dt.datetime.now(dt.UTC),
                    )
        except IntegrityError:
            existing = await self.get(plan.user_id, plan.date)
            if existing is None:
                raise
            return existing
        return plan

    async def replace_untouched(self, plan: Plan, keep: list[Task], new_tasks: list[Task]) -> Plan | None:
        """Swap the plan's untouched tasks (pending, never decided) for `new_tasks` and update the
        plan row from `plan`; tasks the user touched meanwhile are kept whatever `keep` says. The
        new tasks go to the index outbox in the same transaction."""
        keep_ids = [t.id for t in keep]
        async with self.engine.begin() as connection:
            await connection.execute(
                delete(tasks).where(
                    tasks.c.plan_id == plan.id,
                    tasks.c.id.not_in(keep_ids),
                    tasks.c.status == "pending",
                    tasks.c.decided_at.is_(None),
                )
            )
            position = len(keep_ids) + 1000  # after whatever was kept
            if new_tasks:
                await connection.execute(
                    insert(tasks),
                    [_task_row(plan, t, position + n) for n, t in enumerate(new_tasks)],
                )
                await outbox_store.enqueue(
                    connection,
                    plan.user_id,
                    "",
                    [task_document(plan.date, t) for t in new_tasks],
                    dt.datetime.now(dt.UTC),
                )
            await connection.execute(
                update(plans)
                .where(plans.c.id == plan.id)
                .values(
                    generation_mode=plan.generation_mode,
                    fallback_used=plan.fallback_used,
                    degraded_reason=plan.degraded_reason,
                    provenance=plan.provenance,
                )
            )
        return await self.get(plan.user_id, plan.date)

    async def set_status(self, user_id: str, task_id: str, status: str, notes: str | None) -> tuple[Task, str] | None:
        """Update one of the user's tasks (and queue its index update in the same transaction); returns it
        with its plan's date, or None if not theirs."""
        now = dt.datetime.now(dt.UTC)
        async with self.engine.begin() as connection:
            result = await connection.execute(
                update(tasks)
                .where(tasks.c.id == task_id, tasks.c.user_id == user_id)
                .values(status=status, decided_at=now, completion_notes=notes)
            )
            if result.rowcount == 0:
                return None
            row = (await connection.execute(select(tasks).where(tasks.c.id == task_id))).one()
            date = (await connection.execute(select(plans.c.date).where(plans.c.id == row.plan_id))).scalar_one()
            task = _task(row)
            await outbox_store.enqueue(connection, user_id, "", [task_document(date, task)], now)
        return task, date
