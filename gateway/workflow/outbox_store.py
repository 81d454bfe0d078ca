"""The index outbox table's operations: enqueue inside the caller's transaction, claim due rows
under a lease (FOR UPDATE SKIP LOCKED on PostgreSQL, so gateway replicas never take the same row;
SQLite has one writer at a time), and record each delivery's outcome."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.workflow.db import index_outbox

PENDING, FAILED = "pending", "failed"


def utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands timestamps back naive; they were written as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    user_id: str
    org_id: str
    documents: list[dict[str, Any]]
    attempts: int
    created_at: dt.datetime


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    failed: int
    oldest_pending: dt.datetime | None
    failures: list[tuple[int, str, str, dt.datetime]]  # (row id, reason, message, created_at), newest first


async def enqueue(
    connection: AsyncConnection, user_id: str, org_id: str, documents: Sequence[dict[str, Any]], now: dt.datetime
) -> None:
    """Add a delivery to the caller's open transaction: it commits (or not) with the data it indexes."""
    if not documents:
        return
    await connection.execute(
        insert(index_outbox).values(
            user_id=user_id,
            org_id=org_id,
            documents=list(documents),
            state=PENDING,
            attempts=0,
            created_at=now,
            next_attempt_at=now,
            lease_until=None,
        )
    )


class OutboxStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def claim(self, now: dt.datetime, lease_s: float, limit: int = 20) -> list[OutboxRow]:
        """Due pending rows, leased to this drain for `lease_s` (other replicas skip them)."""
        due = and_(
            index_outbox.c.state == PENDING,
            index_outbox.c.next_attempt_at <= now,
            or_(index_outbox.c.lease_until.is_(None), index_outbox.c.lease_until <= now),
        )
        # One statement: the rows are picked and leased atomically (SQLite takes its write lock;
        # PostgreSQL locks the picked rows and other drains skip them), so no two drains share a row.
        pick = (
            select(index_outbox.c.id)
            .where(due)
            .order_by(index_outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        async with self.engine.begin() as connection:
            rows = (
                await connection.execute(
                    update(index_outbox)
                    .where(index_outbox.c.id.in_(pick), due)
                    .values(lease_until=now + dt.timedelta(seconds=lease_s))
                    .returning(*index_outbox.c)
                )
            ).all()
        rows = sorted(rows, key=lambda r: r.id)
        return [
            OutboxRow(r.id, r.user_id, r.org_id or "", list(r.documents), r.attempts, utc(r.created_at)) for r in rows
        ]

    async def delivered(self, row_id: int) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(delete(index_outbox).where(index_outbox.c.id == row_id))

    async def retry_later(self, row_id: int, attempts: int, at: dt.datetime, reason: str, message: str) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                update(index_outbox)
                .where(index_outbox.c.id == row_id)
                .values(
                    attempts=attempts, next_attempt_at=at, lease_until=None, last_reason=reason, last_message=message
                )
            )

    async def fail(self, row_id: int, attempts: int, reason: str, message: str) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                update(index_outbox)
                .where(index_outbox.c.id == row_id)
                .values(state=FAILED, attempts=attempts, lease_until=None, last_reason=reason, last_message=message)
            )

    async def next_due(self) -> dt.datetime | None:
        async with self.engine.connect() as connection:
            value = (
                await connection.execute(
                    select(func.min(index_outbox.c.next_attempt_at)).where(index_outbox.c.state == PENDING)
                )
            ).scalar()
        return utc(value) if value is not None else None

    async def stats(self, failures: int = 10) -> OutboxStats:
        async with self.engine.connect() as connection:
            counts: dict[str, int] = dict(
                (
                    await connection.execute(select(index_outbox.c.state, func.count()).group_by(index_outbox.c.state))
                ).all()
            )
            oldest = (
                await connection.execute(
                    select(func.min(index_outbox.c.created_at)).where(index_outbox.c.state == PENDING)
                )
            ).scalar()
            failed = (
                await connection.execute(
                    select(
                        index_outbox.c.id,
                        index_outbox.c.last_reason,
                        index_outbox.c.last_message,
                        index_outbox.c.created_at,
                    )
                    .where(index_outbox.c.state == FAILED)
                    .order_by(index_outbox.c.id.desc())
                    .limit(failures)
                )
            ).all()
        return OutboxStats(
            int(counts.get(PENDING, 0)),
            int(counts.get(FAILED, 0)),
            utc(oldest) if oldest is not None else None,
            [(r.id, r.last_reason or "", r.last_message or "", utc(r.created_at)) for r in failed],
        )
