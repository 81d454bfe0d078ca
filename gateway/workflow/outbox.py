"""The index outbox drain: delivers queued task documents to the index in the background.

Each attempt mints a fresh internal identity (the request's token is long gone), and a refused
delivery is retried with exponential backoff (jittered, capped) until the index accepts it. A
refusal that no retry can fix (INVALID_ARGUMENT, e.g. REQUEST_INVALID) marks the row "failed" with
its reason, logged and shown on /ops and in metrics: never an endless silent loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections.abc import Callable

from gateway.service_identity import MintFailed, ServiceIdentities
from gateway.workflow.outbox_store import OutboxRow, OutboxStore
from libs.clients.index import IndexClient
from libs.runtime.metrics import (
    INDEX_ENQUEUE_FAILURES,
    INDEX_OUTBOX_DELIVERIES,
    INDEX_OUTBOX_DEPTH,
    INDEX_OUTBOX_OLDEST_AGE,
)

log = logging.getLogger("inkwell.workflow.outbox")

INDEX_AUDIENCE = "inkwell.index"
NOT_RETRYABLE_CODES = frozenset({"INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE"})
LEASE_S = 60.0
IDLE_POLL_S = 5.0  # also how often the depth and age metrics refresh


def backoff_s(attempts: int, base_s: float, max_s: float) -> float:
    """Exponential with full jitter over the upper half: base, 2 base, 4 base, ... capped."""
    ceiling = min(max_s, base_s * 2 ** max(0, attempts - 1))
    return random.uniform(ceiling / 2, ceiling)


class IndexOutbox:
    def __init__(
        self,
        store: OutboxStore,
        index: IndexClient,
        identities: ServiceIdentities,
        base_backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        on_failure: Callable[[str], None] | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.store = store
        self.index = index
        self.identities = identities
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.on_failure = on_failure or (lambda reason: None)
        self.clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """A new row was committed: deliver it now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="index-outbox")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.drain_once()
                wait_s = await self._until_next_due()
            except Exception as exc:  # the database is down: keep the loop, say why, try again later
                log.error(
                    "index outbox drain failed",
                    extra={"reason": "WORKFLOW_STORE_FAILED", "error": type(exc).__name__},
                )
                wait_s = IDLE_POLL_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait_s)

    async def drain_once(self) -> int:
        """Deliver every row that is due; returns how many were delivered."""
        delivered = 0
        while True:
            rows = await self.store.claim(self.clock(), LEASE_S)
            if not rows:
                break
            for row in rows:
                delivered += await self._deliver(row)
        await self.refresh_metrics()
        return delivered

    async def _until_next_due(self) -> float:
        due = await self.store.next_due()
        if due is None:
            return IDLE_POLL_S
        return max(0.01, min(IDLE_POLL_S, (due - self.clock()).total_seconds()))

    async def refresh_metrics(self) -> None:
        stats = await self.store.stats(failures=0)
        INDEX_OUTBOX_DEPTH.labels("pending").set(stats.pending)
        INDEX_OUTBOX_DEPTH.labels("failed").set(stats.failed)
        age = (self.clock() - stats.oldest_pending).total_seconds() if stats.oldest_pending else 0.0
        INDEX_OUTBOX_OLDEST_AGE.set(max(0.0, age))

    async def _deliver(self, row: OutboxRow) -> int:
        attempts = row.attempts + 1
        try:
            token = await self.identities.mint(row.user_id, row.org_id, (INDEX_AUDIENCE,))
        except MintFailed as failed:
            await self._later(row, attempts, failed.reason, failed.message)
            return 0
        result = await self.index.index_background(token, row.documents)
        if result.accepted:
            await self.store.delivered(row.id)
            INDEX_OUTBOX_DELIVERIES.labels("delivered", "").inc()
            if row.attempts:
                log.info("index outbox row delivered after retries", extra={"row": row.id, "attempts": attempts})
            return 1
        reason = result.reason or "INDEX_ENQUEUE_FAILED"
        if result.code in NOT_RETRYABLE_CODES:
            await self.store.fail(row.id, attempts, reason, result.message[:500])
            INDEX_OUTBOX_DELIVERIES.labels("failed", reason).inc()
            log.error(
                "the index refused a plan's tasks; the outbox row is marked failed",
                extra={
                    "reason": "INDEX_OUTBOX_FAILED",
                    "cause": reason,
                    "row": row.id,
                    "documents": len(row.documents),
                },
            )
            return 0
        await self._later(row, attempts, reason, result.message)
        return 0

    async def _later(self, row: OutboxRow, attempts: int, reason: str, message: str) -> None:
        delay = backoff_s(attempts, self.base_backoff_s, self.max_backoff_s)
        await self.store.retry_later(
            row.id, attempts, self.clock() + dt.timedelta(seconds=delay), reason, message[:500]
        )
        INDEX_OUTBOX_DELIVERIES.labels("retry", reason).inc()
        INDEX_ENQUEUE_FAILURES.labels(reason).inc()
        self.on_failure(reason)
        log.warning(
            "tasks could not be delivered to the index yet; retrying",
            extra={
                "reason": "INDEX_ENQUEUE_FAILED",
                "cause": reason,
                "row": row.id,
                "attempt": attempts,
                "retry_in_s": round(delay, 2),
            },
        )
