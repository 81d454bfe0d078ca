"""A short per-user cache for the routes the frontend polls (monitoring stats and health, the
today workflow and its status): within `ttl_s` a poll gets the answer computed for the same user
and key instead of recomputing it, and concurrent identical polls share one computation.

A user's write (AccountingMiddleware calls `forget` for any non-read method, when it arrives and
when it ends) drops that user's entries, so their next poll reads what they just changed. Other
replicas' writes are seen after at most `ttl_s`.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from libs.runtime.metrics import READ_CACHE


class ReadCache:
    def __init__(self, ttl_s: float, max_users: int = 50_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_users = max_users
        self.clock = clock
        self._users: OrderedDict[str, dict[Hashable, tuple[float, Any]]] = OrderedDict()
        self._inflight: dict[tuple[str, Hashable], asyncio.Future[Any]] = {}
        self._stale: set[tuple[str, Hashable]] = set()  # in flight when forget() ran: not kept

    async def answer(self, user: str, key: Hashable, compute: Callable[[], Awaitable[Any]]) -> Any:
        if self.ttl_s <= 0:
            return await compute()
        now = self.clock()
        entries = self._users.get(user)
        if entries is not None:
            hit = entries.get(key)
            if hit is not None and hit[0] > now:
                READ_CACHE.labels("hit").inc()
                return hit[1]
        pending = self._inflight.get((user, key))
        if pending is not None:
            READ_CACHE.labels("shared").inc()
            return await asyncio.shield(pending)
        READ_CACHE.labels("computed").inc()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[(user, key)] = future
        try:
            value = await compute()
            if (user, key) not in self._stale:
                self._store(user, key, value)
            future.set_result(value)
            return value
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it through the shield
            raise
        finally:
            del self._inflight[(user, key)]
            self._stale.discard((user, key))

    def _store(self, user: str, key: Hashable, value: Any) -> None:
        now = self.clock()
        entries = self._users.get(user)
        if entries is None:
            entries = self._users[user] = {}
        else:
            self._users.move_to_end(user)
        entries[key] = (now + self.ttl_s, value)
        while self._users:  # drop users whose entries all expired, oldest first; cap the rest
            oldest, old_entries = next(iter(self._users.items()))
            if len(self._users) <= self.max_users and any(exp > now for exp, _ in old_entries.values()):
                break
            del self._users[oldest]

    def forget(self, user: str) -> None:
        self._users.pop(user, None)
        self._stale.update(k for k in self._inflight if k[0] == user)

    def __len__(self) -> int:
        return len(self._users)
