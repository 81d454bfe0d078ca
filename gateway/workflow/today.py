"""Today's workflow for one user: get, generate once per (user, day), update tasks. The tasks
reach the index through the outbox, written in the same transaction as the plan or the change and
delivered in the background (gateway/workflow/outbox.py): nothing is lost after a long generation."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable

from gateway.workflow.documents import task_document
from gateway.workflow.planner import Planner
from gateway.workflow.store import Plan, Task, WorkflowStore, plan_id

log = logging.getLogger("inkwell.workflow")

# Fallback reasons that pass by themselves (an LLM outage, flaky providers, a limit that resets):
# the next generate asks the LLM again. Configuration errors (ROUTE_NOT_FOUND, ...) do not.
TRANSIENT_FALLBACK_REASONS = frozenset(
    {"LLM_UNAVAILABLE", "ALL_PROVIDERS_FAILED", "TRANSIENT", "DEADLINE", "UNREACHABLE", "USAGE_LIMIT_REACHED"}
)
FALLBACK_SOURCE = "controlled_fallback"


def _untouched(task: Task) -> bool:
    return task.status == "pending" and task.decided_at is None


def _refreshable(plan: Plan) -> bool:
    """A fallback for a transient reason that still has fallback tasks the user has not touched."""
    return (
        plan.fallback_used
        and plan.degraded_reason in TRANSIENT_FALLBACK_REASONS
        and any(t.metadata.get("source") == FALLBACK_SOURCE and _untouched(t) for t in plan.tasks)
    )


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
        if existing is not None and not _refreshable(existing):
            return existing
        key = (user_id, date)
        task = self._generating.get(key)
        if task is None:
            task = asyncio.create_task(self._generate_or_refresh(user_id, identity_token, date), name=f"plan-{date}")
            self._generating[key] = task
            task.add_done_callback(lambda _: self._generating.pop(key, None))
        return await asyncio.shield(task)

    async def _generate_or_refresh(self, user_id: str, identity_token: str, date: str) -> Plan:
        existing = await self.store.get(user_id, date)
        if existing is None:
            return await self._generate(user_id, identity_token, date)
        return await self._refresh_fallback(existing, identity_token)

    async def _refresh_fallback(self, existing: Plan, identity_token: str) -> Plan:
        """A fallback stored because of a transient failure: ask the LLM again; if it answers, its
        tasks replace the untouched fallback ones (tasks the user touched are kept, and so is
        their pillar); if not, the stored plan stays as it is."""
        if not _refreshable(existing):
            return existing
        draft = await self.planner.plan(identity_token, existing.date)
        if all(t.metadata.get("source") == FALLBACK_SOURCE for t in draft.tasks):
            return existing
        keep = [t for t in existing.tasks if not _untouched(t)]
        kept_pillars = {t.pillar_id for t in keep}
        new_tasks = [t for t in draft.tasks if t.pillar_id not in kept_pillars]
        final = keep + new_tasks
        still_fallback = any(t.metadata.get("source") == FALLBACK_SOURCE for t in final)
        refreshed = Plan(
            id=existing.id,
            user_id=existing.user_id,
            date=existing.date,
            source=existing.source,
            generation_mode=draft.generation_mode,
            fallback_used=still_fallback,
            degraded_reason=(draft.degraded_reason or existing.degraded_reason) if still_fallback else None,
            provenance={
                **draft.provenance,
                "task_sources": dict(Counter(str(t.metadata.get("source")) for t in final)),
                "regenerated_after": existing.degraded_reason,
            },
            created_at=existing.created_at,
        )
        stored = await self.store.replace_untouched(refreshed, keep, new_tasks)
        log.info(
            "fallback plan regenerated",
            extra={"reason": existing.degraded_reason, "kept": len(keep), "new": len(new_tasks)},
        )
        self.on_committed()  # the new tasks are in the outbox: wake its delivery
        return stored or existing

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
