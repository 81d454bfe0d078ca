"""Fair sharing of one gateway replica: a per-user request budget (a token bucket, kept as GCRA's
one timestamp per user).

Within the burst a request goes at once; beyond it, a request that would conform within
`max_delay_s` waits for its turn (like nginx `limit_req ... burst`), so a page load that
overshoots is slowed, not refused, and a closed-loop flood is paced to the budget instead of
spinning the event loop; anything later is answered 429 at once, with `Retry-After`.

Throttling runs before routing, from the session cache alone (no RPC, no database), so an
over-budget request costs a hash and a dict lookup. A token the cache does not know yet is
charged by `current_user` after its verification instead.

The 429 body keeps the gateway's envelope and adds a `detail` object that the ALwrity frontend
unwraps (docs/frontend-contract.md §1.4): its `error` and `message` are strings without the word
"limit" and it carries no usage fields, so the frontend does not open its usage-limit modal.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from starlette.requests import Request, cookie_parser
from starlette.responses import JSONResponse
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.accounting import USER_KEY
from gateway.errors import error_body
from gateway.session_cache import SessionCache, VerifiedSession, token_key
from libs.runtime import bearer
from libs.runtime.metrics import THROTTLED

REASON = "RATE_LIMITED"
CHARGED_KEY = "inkwell_fair_share_charged"
SESSION_COOKIE = b"__session"


@dataclass(frozen=True)
class Decision:
    delay_s: float  # wait this long, then serve (0: at once)
    retry_after_s: int | None  # set when refused: seconds until a retry would be accepted

    @property
    def refused(self) -> bool:
        return self.retry_after_s is not None


class FairShare:
    """`rate_per_s` sustained requests per user, `burst` at once, excess delayed up to
    `max_delay_s`. rate_per_s = 0 turns it off. Memory: one float per user active in the last
    burst / rate seconds (idle users are dropped losslessly), at most `max_users`."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        max_delay_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_users: int = 100_000,
    ) -> None:
        self.enabled = rate_per_s > 0
        self.interval = 1.0 / rate_per_s if self.enabled else 0.0
        self.tolerance = (max(1, burst) - 1) * self.interval
        self.max_delay_s = max_delay_s
        self.clock = clock
        self.max_users = max_users
        self._tat: OrderedDict[str, float] = OrderedDict()  # user -> theoretical arrival time

    def __len__(self) -> int:
        return len(self._tat)

    def admit(self, user: str) -> Decision:
        if not self.enabled:
            return Decision(0.0, None)
        now = self.clock()
        tat = max(self._tat.get(user, now), now)
        delay = max(0.0, tat - self.tolerance - now)
        if delay > self.max_delay_s:
            return Decision(0.0, max(1, math.ceil(delay - self.max_delay_s)))
        self._tat[user] = tat + self.interval
        self._tat.move_to_end(user)
        while self._tat:  # users whose bucket is full again are the same as unknown ones
            oldest, oldest_tat = next(iter(self._tat.items()))
            if oldest_tat > now and len(self._tat) <= self.max_users:
                break
            del self._tat[oldest]
        return Decision(delay, None)


class RateLimited(Exception):
    """Raised by `current_user` for a request over its user's budget; app.py answers it."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


def rate_limited_response(retry_after_s: int) -> JSONResponse:
    message = f"too many requests from this account right now; retry in {retry_after_s} s"
    body = error_body(REASON, message, {"retry_after_s": retry_after_s})
    body["detail"] = {"error": "too_many_requests", "message": message, "retry_after_s": retry_after_s}
    return JSONResponse(body, 429, headers={"Retry-After": str(retry_after_s)})


async def handle_rate_limited(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimited)
    return rate_limited_response(exc.retry_after_s)


async def charge(share: FairShare, user: str, route: str) -> None:
    """Take one request from `user`'s budget: wait for its turn, or raise RateLimited."""
    decision = share.admit(user)
    if decision.refused:
        assert decision.retry_after_s is not None
        THROTTLED.labels(route, "refused").inc()
        raise RateLimited(decision.retry_after_s)
    if decision.delay_s > 0:
        THROTTLED.labels(route, "delayed").inc()
        await asyncio.sleep(decision.delay_s)


def _token(scope: Scope) -> str | None:
    cookie_header = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            return bearer.from_authorization(value.decode("latin-1"))
        if name == b"cookie":
            cookie_header = value.decode("latin-1")
    if cookie_header is None:
        return None
    cookie = cookie_parser(cookie_header).get(SESSION_COOKIE.decode())
    return None if bearer.is_missing(cookie) else cookie


class FairShareMiddleware:
    """Charges each /api request to its user's budget before routing, when the session cache
    already knows the token; records the user for request accounting."""

    def __init__(
        self, app: ASGIApp, share: FairShare, sessions: SessionCache, templates: Callable[[], Iterable[str]]
    ) -> None:
        self.app = app
        self.share = share
        self.sessions = sessions
        self.templates = templates
        self._templates: list[tuple[re.Pattern[str], str]] | None = None
        self._route_of = lru_cache(maxsize=512)(self._template)

    def _template(self, path: str) -> str:
        """The route template for the metric's label: never the raw path."""
        if self._templates is None:  # built on first use, once every router is included
            self._templates = [(compile_path(t)[0], t) for t in sorted(self.templates(), key=lambda t: ("{" in t, t))]
        return next((template for regex, template in self._templates if regex.match(path)), "unmatched")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.share.enabled or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        token = _token(scope)
        entry = self.sessions.peek(token_key(token)) if token else None
        if isinstance(entry, VerifiedSession):
            user = str(entry.principal["user_id"])
            state = scope.setdefault("state", {})
            state[USER_KEY] = user
            state[CHARGED_KEY] = True
            try:
                await charge(self.share, user, self._route_of(scope["path"]))
            except RateLimited as exc:
                await rate_limited_response(exc.retry_after_s)(scope, receive, send)
                return
        await self.app(scope, receive, send)
