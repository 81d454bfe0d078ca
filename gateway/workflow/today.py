"""Today's workflow for one user: get, generate once per (user, day), update tasks. The tasks
reach the index through the outbox, written in the same transaction as the plan or the change and
delivered in the background (gateway/workflow/outbox.py): nothing is lost after a long generation."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from gateway.workflow.documents import task_document
from gateway.workflow.planner import Planner
from gateway.workflow.store import Plan, Task, WorkflowStore, plan_id

log = logging.getLogger("inkwell.workflow")


class TodayWorkflow:
    def __init__(
        self,
        store: WorkflowStore,
        planner: Planner,
        on_committed: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.planner = planner
        self.on_committed = on_committed or (lambda: None)  # wakes the outbox drain
        self._generating: dict[tuple[str, str], asyncio.Task[Plan]] = {}
        self.progress: dict[tuple[str, str], str] = {}

    async def get(self, user_id: str, date: str) -> Plan | None:
        return await self.store.get(user_id, date)

    async def generate(self, user_id: str, identity_token: str, date: str) -> Plan:
        """The user's plan for the day, generated at most once even under concurrent calls."""
        existing = await self.store.get(user_id, date)
        if existing is not None:
            return existing
        key = (user_id, date)
        task = self._generating.get(key)
        if task is None:
            task = asyncio.create_task(self._generate(user_id, identity_token, date), name=f"plan-{date}")
            self._generating[key] = task
            task.add_done_callback(lambda _: self._generating.pop(key, None))
        return await asyncio.shield(task)

    async def _generate(self, user_id: str, identity_token: str, date: str) -> Plan:
        key = (user_id, date)
        self.progress[key] = "Planning today's tasks"
        try:
            draft = await self.planner.plan(identity_token, date)
            self.progress[key] = "Saving the plan"
            plan = Plan(
                id=plan_id(user_id, date),
                user_id=user_id,
                date=date,
                source="manual",
                generation_mode=draft.generation_mode,
                fallback_used=draft.fallback_used,
                degraded_reason=draft.degraded_reason,
                provenance={**draft.provenance, "task_sources": draft.source_breakdown},
                created_at=dt.datetime.now(dt.UTC),
                tasks=draft.tasks,
            )
            stored = await self.store.create(plan)
        finally:
            self.progress.pop(key, None)
        self.on_committed()
        return stored

    async def set_status(
        self, user_id: str, identity_token: str, task_id: str, status: str, notes: str | None
    ) -> tuple[Task, str] | None:
        updated = await self.store.set_status(user_id, task_id, status, notes)
        if updated is not None:
            self.on_committed()
        return updated


__all__ = ["TodayWorkflow", "task_document"]
