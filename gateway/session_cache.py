"""Verified sessions keyed by the SHA-256 of the token, kept until the token (or its internal
identity token) expires. A hit costs a hash and a dict lookup, not an RSA verify and an RPC."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

# Refusals that depend only on the token itself are remembered briefly, so a client retrying a
# bad token in a loop costs one RPC per window, not one per request.
CACHEABLE_DENIALS = frozenset(
    {
        "TOKEN_MALFORMED",
        "TOKEN_TOO_LARGE",
        "ALGORITHM_NOT_ALLOWED",
        "ISSUER_NOT_ALLOWED",
        "SIGNATURE_INVALID",
        "TOKEN_EXPIRED",
        "CLAIM_MISSING",
        "AUTHORIZED_PARTY_NOT_ALLOWED",
        "TOKEN_VERSION_UNSUPPORTED",
        "SESSION_PENDING",
    }
)
DENIAL_TTL_S = 5.0
INTERNAL_TOKEN_MARGIN_S = 5.0


@dataclass(frozen=True)
class VerifiedSession:
    principal: dict[str, Any]
    internal_token: str
    valid_until: float


@dataclass(frozen=True)
class Denial:
    reason: str
    message: str
    metadata: dict[str, str]
    valid_until: float


def token_key(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class SessionCache:
    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, VerifiedSession | Denial] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> VerifiedSession | Denial | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        if entry.valid_until <= time.time():
            del self._entries[key]
            self.misses += 1
            return None
        self.hits += 1
        return entry

    def peek(self, key: bytes) -> VerifiedSession | Denial | None:
        """A live entry without counting a lookup (for throttling before the real auth step)."""
        entry = self._entries.get(key)
        return entry if entry is not None and entry.valid_until > time.time() else None

    def put(self, key: bytes, entry: VerifiedSession | Denial) -> None:
        if self.max_entries <= 0 or entry.valid_until <= time.time():
            return
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    @staticmethod
    def session_valid_until(session_exp: float, internal_exp: float) -> float:
        return min(session_exp, internal_exp - INTERNAL_TOKEN_MARGIN_S)
