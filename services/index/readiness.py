"""The index's readiness, as one state with a reason, mirrored into gRPC health.

STARTING -> LOADING_MODEL -> READY, with DEGRADED (serving while repairing) and FAILED (cannot
serve, with the reason). The service name is SERVING in health only when READY or DEGRADED.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from libs.runtime.metrics import INDEX_READINESS, INDEX_READINESS_WAITERS

log = logging.getLogger("inkwell.index.readiness")


class State(StrEnum):
    STARTING = "STARTING"
    LOADING_MODEL = "LOADING_MODEL"
    READY = "READY"
    DEGRADED = "DEGRADED"
    FAILED = "FAILED"


SERVING_STATES = frozenset({State.READY, State.DEGRADED})


@dataclass(frozen=True)
class Snapshot:
    state: State
    reason: str = ""
    message: str = ""
    model: str = ""
    progress: float = 0.0
    since: float = 0.0

    @property
    def serving(self) -> bool:
        return self.state in SERVING_STATES


class Readiness:
    def __init__(self, on_change: Callable[[Snapshot], Awaitable[None]] | None = None) -> None:
        self._snapshot = Snapshot(State.STARTING, since=time.time())
        self._changed = asyncio.Condition()
        self._on_change = on_change
        self._rebuilding: set[str] = set()

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    async def set(self, state: State, reason: str = "", message: str = "", progress: float = 0.0, **extra: str) -> None:
        current = self._snapshot
        changed = (state, reason) != (current.state, current.reason)
        self._snapshot = replace(
            current,
            state=state,
            reason=reason,
            message=message,
            progress=progress,
            since=time.time() if changed else current.since,
            **extra,
        )
        for known in State:
            INDEX_READINESS.labels(known.value).set(1 if known is state else 0)
        if changed:
            level = logging.WARNING if state in (State.FAILED, State.DEGRADED) else logging.INFO
            log.log(
                level, f"index {state.value.lower()}", extra={"state": state.value, "reason": reason, "detail": message}
            )
            if self._on_change is not None:
                await self._on_change(self._snapshot)
        async with self._changed:
            self._changed.notify_all()

    async def rebuilding(self, active: bool, key: str) -> None:
        """Track index rebuilds: DEGRADED while any runs, READY again after."""
        (self._rebuilding.add if active else self._rebuilding.discard)(key)
        if self._rebuilding:
            await self.set(
                State.DEGRADED,
                "INDEX_REBUILDING",
                f"rebuilding {len(self._rebuilding)} damaged index(es) from stored documents",
            )
        elif self._snapshot.state is State.DEGRADED:
            await self.set(State.READY)

    async def wait_serving(self, timeout_s: float) -> bool:
        """True once READY or DEGRADED; False if `timeout_s` passes first."""
        if self._snapshot.serving:
            return True
        INDEX_READINESS_WAITERS.inc()
        try:
            async with asyncio.timeout(max(0.0, timeout_s)):
                async with self._changed:
                    await self._changed.wait_for(lambda: self._snapshot.serving)
        except TimeoutError:
            return False
        finally:
            INDEX_READINESS_WAITERS.dec()
        return True

    async def changes(self) -> AsyncIterator[Snapshot]:
        """The current snapshot, then every change, until serving."""
        last = self._snapshot
        yield last
        while not last.serving:
            seen = last
            async with self._changed:
                await self._changed.wait_for(lambda seen=seen: self._snapshot != seen)  # type: ignore[misc]
            last = self._snapshot
            yield last
