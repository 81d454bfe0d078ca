"""Plan limits enforced before a model is called.

The LLM service owns model calls, so it is the one place a limit can hold. It reads the same
plans file as the gateway (libs/config/plans.toml, or INKWELL_PLANS_FILE) and resolves the user's
plan from its `[assignments]` by the verified identity's user id. Usage this calendar month (UTC)
is read from the usage records on every admission (queued records are flushed first), plus the
calls admitted whose record is not yet written, so concurrent calls cannot all slip under a
calls limit (at the boundary a concurrent call may be refused early, never let through late).

A purpose's chain is filtered: a provider whose own limit (e.g. `mistral_calls` for the Hugging
Face router) is reached is skipped; when every candidate is blocked, or a plan-wide limit
(`ai_text_generation_calls`, `monthly_cost`) is reached, the request is refused with
RESOURCE_EXHAUSTED / USAGE_LIMIT_REACHED and ErrorInfo metadata provider, limitKey, usageType,
current, currentCalls, limit and billingPeriod; RetryInfo says when the next period starts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from dataclasses import dataclass

import grpc

from libs.plans import Exceeded, Plans, limit_keys_for, over_limits, usage_by_key
from libs.runtime.errors import ServiceError
from services.llm.usage import UsageRecorder, UsageStore


def month_bounds(now: dt.datetime) -> tuple[str, float, float]:
    start = dt.datetime(now.year, now.month, 1, tzinfo=dt.UTC)
    end = dt.datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=dt.UTC)
    return start.strftime("%Y-%m"), start.timestamp(), end.timestamp()


@dataclass(frozen=True)
class Admission:
    blocked_providers: frozenset[str]


class LimitGuard:
    def __init__(self, plans: Plans, store: UsageStore, recorder: UsageRecorder) -> None:
        self.plans = plans
        self.store = store
        self.recorder = recorder
        self._in_flight: Counter[str] = Counter()
        self._releases: set[asyncio.Task[None]] = set()

    def acquire(self, user_id: str) -> None:
        """Count one call against the user from before its admission until its usage record is
        written (release), so a concurrent admission sees it in memory or in the records."""
        self._in_flight[user_id] += 1

    def release(self, user_id: str) -> None:
        self._in_flight[user_id] -= 1
        if self._in_flight[user_id] <= 0:
            del self._in_flight[user_id]

    def release_when_written(self, user_id: str) -> None:
        """Release once the queued usage records (this call's among them) are in the store."""

        async def wait() -> None:
            try:
                await self.recorder.flush()
            finally:
                self.release(user_id)

        task = asyncio.create_task(wait(), name="llm-limit-release")
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def admit(self, user_id: str, providers: list[str], now: dt.datetime | None = None) -> Admission:
        """Which of `providers` may be called for this user; raise USAGE_LIMIT_REACHED if none may.
        Called after acquire(user_id)."""
        now = now or dt.datetime.now(dt.UTC)
        period, start, end = month_bounds(now)
        plan = self.plans.for_user(user_id)
        if not any(limit > 0 for limit in plan.limits.values()):
            return Admission(frozenset())
        # Read before the records: a call released after this point was written before the read
        # below (it may be counted twice, never missed). This call itself (acquired) is excepted.
        others = max(0, self._in_flight.get(user_id, 0) - 1)
        await self.recorder.flush()
        rows = await asyncio.to_thread(self.store.summary, user_id, start, end)
        used = usage_by_key(rows, self.plans)
        used["ai_text_generation_calls"] += others
        blocked: dict[str, Exceeded] = {}
        for provider in dict.fromkeys(providers):
            reached = over_limits(plan, used, limit_keys_for(provider))
            if reached:
                blocked[provider] = reached[0]
        if providers and len(blocked) == len(set(providers)):
            provider = providers[0]
            raise self._refusal(provider, blocked[provider], rows, period, end - now.timestamp())
        return Admission(frozenset(blocked))

    def _refusal(
        self, provider: str, exceeded: Exceeded, rows: list[dict[str, object]], period: str, seconds_left: float
    ) -> ServiceError:
        usage_type = "cost" if exceeded.key == "monthly_cost" else exceeded.key.rsplit("_", 1)[1]
        calls = sum(int(str(r["calls"])) for r in rows if r["outcome"] == "ok" and r["provider"] == provider)
        return ServiceError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "USAGE_LIMIT_REACHED",
            f"Monthly {exceeded.key} limit reached for {period}: {exceeded.used:g} of {exceeded.limit:g}",
            {
                "provider": provider,
                "limitKey": exceeded.key,
                "usageType": usage_type,
                "current": f"{exceeded.used:g}",
                "currentCalls": str(calls),
                "limit": f"{exceeded.limit:g}",
                "billingPeriod": period,
            },
            retry_after_s=max(1.0, seconds_left),
        )
