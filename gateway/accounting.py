"""Per-user request accounting over a sliding window (default 5 minutes), for the monitoring
routes: real numbers from the gateway's own traffic, not a second source that can drift.

Counts live in fixed time buckets (default 10 s), so recording a request touches one bucket and
reading a user's window sums a fixed number of buckets, however many requests the user made: a
busy user costs the event loop no more than a quiet one. The buckets sit behind `BucketStore`, a
two-method interface that a shared store (one row per key and bucket, e.g. in PostgreSQL) can
implement for several gateway replicas; `MemoryBuckets` is the one-process implementation.
"""

from __future__ import annotations

import math
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.loop_watch import SERVING
from libs.runtime.metrics import HTTP_LATENCY

USER_KEY = "inkwell_user_id"
ALL_USERS = ""  # the key of the gateway-wide totals (user ids are never empty)
WARNING_RATE = 0.05
CRITICAL_RATE = 0.10
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class WindowStats:
    requests: int
    errors: int

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def status(self) -> str:
        if self.error_rate > CRITICAL_RATE:
            return "critical"
        if self.error_rate > WARNING_RATE:
            return "warning"
        return "healthy"


class BucketStore(Protocol):
    """Request and error counters per (key, bucket number). Bucket n covers
    [n * bucket_s, (n + 1) * bucket_s) in Unix seconds, so every replica agrees on the edges."""

    def add(self, key: str, bucket: int, requests: int, errors: int) -> None:
        """Add to one bucket's counters."""

    def totals(self, key: str, first: int, last: int) -> WindowStats:
        """The sums of buckets first..last (inclusive) for `key`."""


class _Ring:
    __slots__ = ("errors", "last", "numbers", "requests")

    def __init__(self, slots: int) -> None:
        self.numbers = [-1] * slots  # which bucket each slot holds
        self.requests = [0] * slots
        self.errors = [0] * slots
        self.last = -1  # the newest bucket written


class MemoryBuckets:
    """One ring of `slots` buckets per key. A slot remembers which bucket it holds, so a stale
    slot reads as zero and is reset on the next write. Keys idle for a whole ring are dropped
    oldest-first as writes arrive (amortised O(1), and lossless: they hold nothing in the
    window), so memory follows the active users."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._rings: OrderedDict[str, _Ring] = OrderedDict()
        self.bucket_reads = 0  # slots inspected by totals(): the work a stats call does

    def __len__(self) -> int:
        return len(self._rings)

    def add(self, key: str, bucket: int, requests: int, errors: int) -> None:
        ring = self._rings.get(key)
        if ring is None:
            ring = self._rings[key] = _Ring(self.slots)
        else:
            self._rings.move_to_end(key)
        slot = bucket % self.slots
        if ring.numbers[slot] != bucket:
            ring.numbers[slot], ring.requests[slot], ring.errors[slot] = bucket, 0, 0
        ring.requests[slot] += requests
        ring.errors[slot] += errors
        ring.last = max(ring.last, bucket)
        horizon = bucket - self.slots
        while True:  # ends at the latest: the key just written is the newest
            oldest, oldest_ring = next(iter(self._rings.items()))
            if oldest_ring.last > horizon:
                break
            del self._rings[oldest]

    def totals(self, key: str, first: int, last: int) -> WindowStats:
        ring = self._rings.get(key)
        if ring is None:
            return WindowStats(0, 0)
        requests = errors = 0
        for number, count, failed in zip(ring.numbers, ring.requests, ring.errors, strict=True):
            self.bucket_reads += 1
            if first <= number <= last:
                requests += count
                errors += failed
        return WindowStats(requests, errors)


class RequestAccounting:
    """Requests and 5xx answers per user (and in total) over the last `window_s` seconds,
    rounded to whole buckets: the window is the current bucket and the ones before it."""

    def __init__(
        self,
        window_s: float = 300.0,
        bucket_s: float = 10.0,
        clock: Callable[[], float] = time.time,
        store: BucketStore | None = None,
    ) -> None:
        self.window_s = window_s
        self.bucket_s = bucket_s
        self.buckets = max(1, math.ceil(window_s / bucket_s))
        self.clock = clock
        self.store: BucketStore = store if store is not None else MemoryBuckets(self.buckets)
        self.enqueue_failures: Counter[str] = Counter()

    def _bucket(self) -> int:
        return int(self.clock() // self.bucket_s)

    def record(self, user_id: str | None, status: int) -> None:
        bucket = self._bucket()
        error = int(status >= 500)
        self.store.add(ALL_USERS, bucket, 1, error)
        if user_id:
            self.store.add(user_id, bucket, 1, error)

    def stats(self, user_id: str | None = None) -> WindowStats:
        last = self._bucket()
        return self.store.totals(user_id or ALL_USERS, last - self.buckets + 1, last)


class AccountingMiddleware:
    """Counts every HTTP request with its status, under the verified user when there is one.
    A user's write (any method but GET/HEAD/OPTIONS) also drops their cached read answers, so
    the next poll sees what the write changed."""

    def __init__(self, app: ASGIApp, accounting: RequestAccounting, on_write: Callable[[str], None]) -> None:
        self.app = app
        self.accounting = accounting
        self.on_write = on_write

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            user = scope.get("state", {}).get(USER_KEY)
            self.accounting.record(user, status)
            if user and scope["method"] not in READ_METHODS:
                self.on_write(user)
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            SERVING.set(f"{scope['method']} {route}")
            HTTP_LATENCY.labels(route, scope["method"], str(status)).observe(time.perf_counter() - started)
