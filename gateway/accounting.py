"""Per-user request accounting over a sliding window (default 5 minutes), for the monitoring
routes: real numbers from the gateway's own traffic, not a second source that can drift."""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.runtime.metrics import HTTP_LATENCY

USER_KEY = "inkwell_user_id"
WARNING_RATE = 0.05
CRITICAL_RATE = 0.10


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


class RequestAccounting:
    def __init__(self, window_s: float = 300.0, clock: Callable[[], float] = time.time) -> None:
        self.window_s = window_s
        self.clock = clock
        self._by_user: dict[str, deque[tuple[float, bool]]] = {}
        self._all: deque[tuple[float, bool]] = deque()
        self.enqueue_failures: Counter[str] = Counter()
        self._recorded = 0

    def record(self, user_id: str | None, status: int) -> None:
        now = self.clock()
        entry = (now, status >= 500)
        self._all.append(entry)
        self._trim(self._all, now)
        if user_id:
            events = self._by_user.setdefault(user_id, deque())
            events.append(entry)
            self._trim(events, now)
        self._recorded += 1
        if self._recorded % 1000 == 0:  # forget users who went quiet, so memory stays bounded
            horizon = now - self.window_s
            for user in [u for u, ev in self._by_user.items() if not ev or ev[-1][0] < horizon]:
                del self._by_user[user]

    def _trim(self, events: deque[tuple[float, bool]], now: float) -> None:
        horizon = now - self.window_s
        while events and events[0][0] < horizon:
            events.popleft()

    def stats(self, user_id: str | None = None) -> WindowStats:
        events = self._all if user_id is None else self._by_user.get(user_id, deque())
        self._trim(events, self.clock())
        return WindowStats(len(events), sum(1 for _, error in events if error))


class AccountingMiddleware:
    """Counts every HTTP request with its status, under the verified user when there is one."""

    def __init__(self, app: ASGIApp, accounting: RequestAccounting) -> None:
        self.app = app
        self.accounting = accounting

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
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            HTTP_LATENCY.labels(route, scope["method"], str(status)).observe(time.perf_counter() - started)
