"""The index outbox table on SQLite and PostgreSQL: rows commit with the plan, due rows are
claimed under a lease that concurrent drains (gateway replicas) respect, outcomes are recorded."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.workflow.db import open_engine
from gateway.workflow.outbox_store import OutboxStore
from gateway.workflow.store import Plan, Task, WorkflowStore, plan_id

PG = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        engine = await open_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.sqlite3'}")
        yield engine
        await engine.dispose()
        return
    name = f"inkwell_outbox_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(f"{PG}/postgres")
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        engine = await open_engine(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
        yield engine
        await engine.dispose()
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()


def plan(user: str, titles: list[str]) -> Plan:
    return Plan(
        id=plan_id(user, "2026-05-01"),
        user_id=user,
        date="2026-05-01",
        source="manual",
        generation_mode="llm_generation",
        fallback_used=False,
        degraded_reason=None,
        provenance={},
        created_at=dt.datetime.now(dt.UTC),
        tasks=[
            Task(f"{user}-t{n}", "plan", title, "d", "pending", "high", 10, [], "/content-planning", "navigate", {})
            for n, title in enumerate(titles)
        ],
    )


async def test_rows_commit_with_the_plan_and_leases_keep_drains_apart(engine: AsyncEngine) -> None:
    store, outbox = WorkflowStore(engine), OutboxStore(engine)
    for n in range(6):
        await store.create(plan(f"user_{n}", [f"task {n}"]))
    await store.create(plan("user_0", ["a second plan for the same day loses"]))  # one plan per day: no row
    now = dt.datetime.now(dt.UTC)
    first, second = await asyncio.gather(outbox.claim(now, 60, limit=3), outbox.claim(now, 60, limit=3))
    ids = [r.id for r in first] + [r.id for r in second]
    assert len(ids) == 6 and len(set(ids)) == 6  # every row claimed once, none twice
    assert await outbox.claim(now, 60) == []  # leased
    assert await outbox.claim(now + dt.timedelta(seconds=61), 60, limit=10) != []  # a lease runs out
    row = first[0]
    assert row.documents[0]["metadata"]["type"] == "daily_task" and row.documents[0]["id"].startswith("task:")


async def test_outcomes_are_recorded(engine: AsyncEngine) -> None:
    store, outbox = WorkflowStore(engine), OutboxStore(engine)
    for user in ("user_a", "user_b", "user_c"):
        await store.create(plan(user, ["x"]))
    now = dt.datetime.now(dt.UTC)
    a, b, c = await outbox.claim(now, 60)
    await outbox.delivered(a.id)
    await outbox.retry_later(b.id, 1, now + dt.timedelta(seconds=30), "BACKEND_UNAVAILABLE", "index down")
    await outbox.fail(c.id, 1, "REQUEST_INVALID", "documents[0].text: non-empty")
    stats = await outbox.stats()
    assert (stats.pending, stats.failed) == (1, 1)
    assert stats.failures[0][1:3] == ("REQUEST_INVALID", "documents[0].text: non-empty")
    assert stats.oldest_pending is not None and stats.oldest_pending <= dt.datetime.now(dt.UTC)
    assert await outbox.claim(now, 60) == []  # b is not due yet, c is failed
    due = await outbox.next_due()
    assert due is not None and due > now
    [again] = await outbox.claim(now + dt.timedelta(seconds=31), 60)
    assert (again.id, again.attempts) == (b.id, 1)
    await store.set_status("user_b", "user_b-t0", "completed", None)  # a change queues its own row
    assert (await outbox.stats()).pending == 2
