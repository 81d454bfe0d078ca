"""One busy user must not slow everyone (issue 17): constant-cost accounting, the per-user budget
and its 429, the polled-read cache, and the event-loop blocking watch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gateway.accounting import MemoryBuckets, RequestAccounting
from gateway.ratelimit import FairShare
from gateway.read_cache import ReadCache
from tests.support.fake_clerk import FakeClerk, TokenFactory
from tests.test_gateway import Stack, bearer

STATS = "/api/content-planning/monitoring/lightweight-stats"


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# ----------------------------------------------------------------------------- accounting


def test_stats_cost_does_not_grow_with_requests() -> None:
    clock = Clock()
    accounting = RequestAccounting(window_s=300, bucket_s=10, clock=clock)
    store = accounting.store
    assert isinstance(store, MemoryBuckets)
    for n in range(100_000):  # one busy user over ~4 minutes, 1% errors
        clock.now += 0.0025
        accounting.record("user_busy", 500 if n % 100 == 0 else 200)
    store.bucket_reads = 0
    stats = accounting.stats("user_busy")
    assert store.bucket_reads <= 30  # one read per 10 s bucket of the 5-minute window, whatever the traffic
    assert stats.requests == 100_000 and stats.errors == 1_000
    assert accounting.stats().requests == 100_000  # the gateway-wide totals too


def test_window_drops_old_buckets_and_idle_users() -> None:
    clock = Clock()
    accounting = RequestAccounting(window_s=300, bucket_s=10, clock=clock)
    accounting.record("user_a", 200)
    accounting.record("user_a", 503)
    clock.now += 150
    accounting.record("user_a", 200)
    assert (accounting.stats("user_a").requests, accounting.stats("user_a").errors) == (3, 1)
    assert accounting.stats("user_b").requests == 0
    clock.now += 160  # the first two are now more than 300 s old
    stats = accounting.stats("user_a")
    assert (stats.requests, stats.errors, stats.status) == (1, 0, "healthy")
    clock.now += 301
    accounting.record("user_c", 200)  # a write drops keys idle for a whole window
    assert accounting.stats("user_a").requests == 0
    assert len(accounting.store) == 2  # type: ignore[arg-type]  # user_c and the totals


# ----------------------------------------------------------------------------- budget


def test_budget_bursts_then_paces_then_refuses() -> None:
    clock = Clock()
    share = FairShare(rate_per_s=10, burst=5, max_delay_s=0.5, clock=clock)
    assert [share.admit("u").delay_s for _ in range(5)] == [0.0] * 5  # the burst goes at once
    delays = [share.admit("u").delay_s for _ in range(5)]  # then one every 0.1 s, waiting its turn
    assert delays == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    refused = share.admit("u")
    assert refused.refused and refused.retry_after_s == 1
    assert not share.admit("someone_else").refused  # another user is untouched
    clock.now += 1.1  # 0.6 s of queue drained and 0.5 s more: room again
    assert share.admit("u").delay_s == 0.0
    clock.now += 60
    share.admit("v")
    assert len(share) == 1  # users whose bucket refilled are forgotten (lossless)


def test_budget_off_when_rate_is_zero() -> None:
    share = FairShare(rate_per_s=0, burst=1, max_delay_s=0)
    assert all(not share.admit("u").refused for _ in range(1000))


# ----------------------------------------------------------------------------- read cache


async def test_read_cache_reuses_shares_and_forgets() -> None:
    clock = Clock()
    cache = ReadCache(ttl_s=1.0, clock=clock)
    calls = 0

    async def compute() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return calls

    assert await asyncio.gather(*(cache.answer("u", "k", compute) for _ in range(10))) == [1] * 10
    assert await cache.answer("u", "k", compute) == 1  # within the TTL
    assert await cache.answer("v", "k", compute) == 2  # per user
    clock.now += 1.01
    assert await cache.answer("u", "k", compute) == 3  # expired
    cache.forget("u")
    assert await cache.answer("u", "k", compute) == 4  # the user's write cleared it
    pending = asyncio.ensure_future(cache.answer("u", "other", compute))
    await asyncio.sleep(0)
    cache.forget("u")  # a write while the read is in flight: its answer is not kept
    await pending
    assert await cache.answer("u", "other", compute) == 6


# ----------------------------------------------------------------------------- over HTTP


@pytest.fixture
def gw(fake_clerk: FakeClerk, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(fake_clerk, tmp_path / "data")
    yield s
    s.close()


@pytest.fixture
def tight(fake_clerk: FakeClerk, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(
        fake_clerk,
        tmp_path / "data",
        INKWELL_RATE_PER_S="2",
        INKWELL_RATE_BURST="3",
        INKWELL_RATE_MAX_DELAY_S="0.6",
    )
    yield s
    s.close()


def test_over_budget_is_a_429_the_frontend_does_not_take_for_a_plan_limit(tight: Stack, tokens: TokenFactory) -> None:
    flooder = {**bearer(tokens.mint(sub="user_flood")), "Origin": "http://localhost:3000"}
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: tight.client.get("/api/auth/me", headers=flooder), range(8)))
    codes = sorted(r.status_code for r in statuses)
    assert codes == [200] * 4 + [429] * 4, codes  # 3 at once, 1 paced (0.5 s at 2/s), the rest refused
    refused = next(r for r in statuses if r.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["access-control-allow-origin"] == "http://localhost:3000"
    body = refused.json()
    assert body["error"]["reason"] == "RATE_LIMITED"
    assert body["error"]["request_id"] == refused.headers["x-request-id"]
    # docs/frontend-contract.md §1.4: the object `detail` is what the frontend inspects; strings
    # only, no usage fields and no "limit", so it is not a usage-limit (or any plan) error
    detail = body["detail"]
    assert isinstance(detail["error"], str) and isinstance(detail["message"], str)
    assert "limit" not in detail["error"] and "limit" not in detail["message"]
    assert not {"provider", "usage_info", "current_calls", "current_tokens", "requested_tokens", "limit"} & set(detail)
    # another user is not affected by the flood
    other = {**bearer(tokens.mint(sub="user_calm")), "Origin": "http://localhost:3000"}
    assert tight.client.get("/api/auth/me", headers=other).status_code == 200
    refused_before = throttled(tight, "refused")
    assert throttled(tight, "delayed") >= 1
    # the session is cached now: these refusals come before routing, labelled by the route template
    with ThreadPoolExecutor(8) as pool:
        again = [r.status_code for r in pool.map(lambda _: tight.client.get("/api/auth/me", headers=flooder), range(8))]
    assert throttled(tight, "refused") == refused_before + again.count(429) > refused_before


def throttled(stack: Stack, action: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    families = text_string_to_metric_families(stack.client.get("/metrics").text)
    return sum(
        s.value
        for f in families
        for s in f.samples
        if s.name == "inkwell_gateway_throttled_total" and s.labels == {"route": "/api/auth/me", "action": action}
    )


def test_polled_stats_come_from_a_short_per_user_cache(gw: Stack, tokens: TokenFactory) -> None:
    headers = bearer(tokens.mint(sub="user_poll"))
    first = gw.client.get(STATS, headers=headers).json()["data"]
    second = gw.client.get(STATS, headers=headers).json()["data"]
    assert second["timestamp"] == first["timestamp"]  # not recomputed within the TTL
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        later = gw.client.get(STATS, headers=headers).json()["data"]
        if later["timestamp"] != first["timestamp"]:
            break
    assert later["timestamp"] != first["timestamp"] and later["recent_requests"] >= 3


def test_heavy_history_stats_do_not_block_the_loop(gw: Stack, tokens: TokenFactory) -> None:
    # 300k requests in the window: a per-request walk (the old accounting) costs ~10-15 ms of CPU
    # per stats call here, above the watch's 8 ms; 30 buckets cost microseconds
    for _ in range(300_000):
        gw.state.accounting.record("user_heavy", 200)
    headers = bearer(tokens.mint(sub="user_heavy"))
    body = gw.client.get(STATS, headers=headers).json()
    assert body["data"]["recent_requests"] >= 300_000
    assert gw.state.loop_watch.blocked == []  # checked again, for every route test, in Stack.close


def test_the_loop_watch_catches_a_blocking_handler(gw: Stack, caplog: pytest.LogCaptureFixture) -> None:
    @gw.app.get("/blocking")
    async def blocking() -> dict[str, Any]:
        spent = time.thread_time()
        while time.thread_time() - spent < 0.03:  # 30 ms of CPU on the loop
            pass
        return {}

    assert gw.client.get("/blocking").status_code == 200
    assert gw.state.loop_watch.reported.wait(10)  # the report follows the response's last write
    blocked = gw.state.loop_watch.blocked
    assert len(blocked) == 1 and blocked[0].cpu_ms >= 30 and "blocking" in blocked[0].callback
    assert any(getattr(r, "reason", None) == "EVENT_LOOP_BLOCKED" for r in caplog.records)
    blocked.clear()  # expected here; Stack.close fails on any other
