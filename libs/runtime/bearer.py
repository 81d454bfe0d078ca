"""How a session token arrives over HTTP, and what counts as "no token".

The frontend sends `Bearer null` or `Bearer undefined` when it asks before its session is ready;
that is TOKEN_MISSING (wait and retry), not a malformed token.
"""

from __future__ import annotations

EMPTY_TOKENS = frozenset({"", "null", "undefined", "none", "bearer"})


def is_missing(token: str | None) -> bool:
    return token is None or token.strip().lower() in EMPTY_TOKENS


def from_authorization(value: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return None if is_missing(token) else token.strip()
