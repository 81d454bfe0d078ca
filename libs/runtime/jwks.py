"""A JWKS cache shared by Clerk session verification and internal identity verification.

Rules (see research/auth.md): keys come only from the configured fetcher, never from a token;
the last good key set keeps serving while a fetch fails; one fetch in flight at a time; an unknown
`kid` triggers at most one refetch per cooldown, so a flood of random kids costs one fetch; the
cooldown guards a healthy key set only: after a failed fetch an unknown kid may refetch at once
(one fetch at a time, each with its timeout), and the first good fetch after an outage ends the
cooldown, so a token signed with a key rotated in during the outage verifies as soon as the issuer
answers again; every fetch has a timeout; a background task refreshes before the TTL runs out.
Client-facing messages never carry the fetch error (it names the internal JWKS URL): that goes to
the log and `stats.last_error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from libs.runtime.metrics import JWKS_FETCHES, JWKS_LOOKUPS

log = logging.getLogger(__name__)

Fetcher = Callable[[], Awaitable[Mapping[str, Any]]]


class KeyLookupError(Exception):
    """Base for key lookup failures; `reason` is the stable code callers report."""

    reason = "KEY_LOOKUP_FAILED"


class KidUnknown(KeyLookupError):
    reason = "KID_UNKNOWN"


class JwksUnavailable(KeyLookupError):
    reason = "JWKS_UNAVAILABLE"


@dataclass
class CacheStats:
    fetches: int = 0
    fetch_failures: int = 0
    hits: int = 0
    misses: int = 0
    last_error: str = ""
    last_success_at: float = 0.0


def parse_jwks(document: Mapping[str, Any], allowed_kty: frozenset[str]) -> dict[str, jwt.PyJWK]:
    """Usable signing keys by kid; keys without a kid, of another type, or for encryption are skipped."""
    keys: dict[str, jwt.PyJWK] = {}
    raw_keys = document.get("keys")
    if not isinstance(raw_keys, list):
        raise ValueError("JWKS document has no 'keys' list")
    for raw in raw_keys:
        if not isinstance(raw, dict) or raw.get("use", "sig") != "sig":
            continue
        kid = raw.get("kid")
        if not isinstance(kid, str) or not kid or raw.get("kty") not in allowed_kty:
            continue
        try:
            keys[kid] = jwt.PyJWK(raw)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
            log.warning("jwks key skipped", extra={"kid": kid, "reason": "JWKS_KEY_INVALID", "error": str(exc)})
    return keys


class KeySetCache:
    """Cached key set from one pinned source."""

    def __init__(
        self,
        name: str,
        fetch: Fetcher,
        *,
        allowed_kty: frozenset[str],
        ttl_s: float = 300.0,
        unknown_kid_cooldown_s: float = 30.0,
        fetch_timeout_s: float = 5.0,
        failure_retry_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._fetch = fetch
        self._allowed_kty = allowed_kty
        self.ttl_s = ttl_s
        self.cooldown_s = unknown_kid_cooldown_s
        self.fetch_timeout_s = fetch_timeout_s
        self.failure_retry_s = failure_retry_s
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._last_fetch_ok = False
        self._last_kid_refetch = float("-inf")
        self._inflight: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self.stats = CacheStats()

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    @property
    def loaded(self) -> bool:
        return bool(self._keys)

    def start(self) -> None:
        """Fetch now and keep the set fresh in the background (call from a running loop)."""
        if self._refresher is None:
            self._refresher = asyncio.create_task(self._refresh_forever(), name=f"jwks-refresh-{self.name}")

    async def close(self) -> None:
        for task in (self._refresher, self._inflight):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._refresher = self._inflight = None

    def cached(self, kid: str) -> jwt.PyJWK | None:
        return self._keys.get(kid)

    async def get_key(self, kid: str) -> jwt.PyJWK:
        key = self._keys.get(kid)
        if key is not None:
            self.stats.hits += 1
            JWKS_LOOKUPS.labels(self.name, "hit").inc()
            return key
        self.stats.misses += 1
        JWKS_LOOKUPS.labels(self.name, "miss").inc()
        if self._inflight is None:
            now = self._clock()
            # Until a key set has loaded, or after a failed fetch, every miss may refetch (still one
            # fetch at a time: `_inflight` is single flight, each fetch has its timeout): a service
            # starting or an issuer coming back is never shut out, so the first token after an
            # outage verifies. The cooldown guards only a healthy key set against random kids.
            healthy = bool(self._keys) and self._last_fetch_ok
            cooldown = self.cooldown_s if healthy else 0.0
            if now - self._last_kid_refetch < cooldown:
                raise self._miss_error(kid)
            self._last_kid_refetch = now
        await self.refresh()
        key = self._keys.get(kid)
        if key is None:
            raise self._miss_error(kid)
        return key

    def _miss_error(self, kid: str) -> KeyLookupError:
        if not self._last_fetch_ok:
            return JwksUnavailable(f"the {self.name} key set could not be fetched; retry in a few seconds")
        return KidUnknown(f"key id {kid[:64]!r} is not in the {self.name} key set")

    async def refresh(self) -> None:
        """Fetch once; concurrent callers share the fetch in flight. Never raises."""
        if self._inflight is None:
            self._inflight = asyncio.create_task(self._do_fetch(), name=f"jwks-fetch-{self.name}")
        task = self._inflight
        await asyncio.shield(task)

    async def _do_fetch(self) -> None:
        self.stats.fetches += 1
        try:
            document = await asyncio.wait_for(self._fetch(), timeout=self.fetch_timeout_s)
            keys = parse_jwks(document, self._allowed_kty)
            if not keys:
                raise ValueError("key set has no usable signing keys")
            self._keys = keys
            if not self._last_fetch_ok:
                self._last_kid_refetch = float("-inf")  # the outage is over: so is its cooldown
            self._last_fetch_ok = True
            self.stats.last_error = ""
            self.stats.last_success_at = time.time()
            JWKS_FETCHES.labels(self.name, "ok").inc()
        except Exception as exc:  # any fetch failure keeps the last good set
            JWKS_FETCHES.labels(self.name, "failed").inc()
            self._last_fetch_ok = False
            self.stats.fetch_failures += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"[:300] if str(exc) else type(exc).__name__
            log.warning(
                "jwks fetch failed; serving last good key set" if self._keys else "jwks fetch failed; no keys yet",
                extra={"reason": "JWKS_UNAVAILABLE", "key_set": self.name, "error": self.stats.last_error},
            )
        finally:
            self._inflight = None

    async def _refresh_forever(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.ttl_s if self._last_fetch_ok else min(self.failure_retry_s, self.ttl_s))
