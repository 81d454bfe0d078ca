"""Clerk session token verification: pinned issuers, pinned keys, one reason per refusal.

Order matters: the cheap structural checks come first, the signature is verified before any
claim is judged (so a reason is never an oracle for an unsigned token), and the Clerk-specific
claims (`v`, `sid`, `sts`, `azp`) come last.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jwt

from libs.runtime.bearer import is_missing
from libs.runtime.jwks import KeyLookupError
from services.auth.clerk_keys import looks_like_development_issuer
from services.auth.key_sources import KeySource

ALLOWED_ALGORITHMS = ("RS256",)
REQUIRED_CLAIMS = ["exp", "nbf", "iat", "sub", "sid", "iss"]
MAX_KID_LENGTH = 128
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")


class AuthFailure(Exception):
    """A refused token: `reason` is the stable code, `metadata` explains (never the token)."""

    def __init__(self, reason: str, message: str, **metadata: Any) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.metadata = {k: str(v) for k, v in metadata.items()}


@dataclass(frozen=True)
class TrustedIssuer:
    """A pinned issuer. `namespace` scopes its subjects: a principal is (issuer, subject), and the
    user id every downstream sees is `<namespace>:<sub>` (e.g. `dev:alice`), or the bare `sub`
    for Clerk, whose ids (`user_...`) never contain a colon."""

    issuer: str
    keys: KeySource
    development: bool = False
    namespace: str = ""

    def user_id(self, subject: str) -> str:
        """The one place a verified subject becomes the user id (internal token, gateway, storage)."""
        if self.namespace:
            return f"{self.namespace}:{subject}"
        if ":" in subject:
            # A bare subject with a colon could collide with a namespaced one (`dev:alice`).
            raise AuthFailure("TOKEN_MALFORMED", "token subject must not contain ':'", claim="sub")
        return subject


@dataclass(frozen=True)
class VerifiedSession:
    user_id: str  # issuer-scoped: TrustedIssuer.user_id(sub)
    session_id: str
    issuer: str
    expires_at: int
    org_id: str = ""
    org_role: str = ""
    org_slug: str = ""
    authorized_party: str = ""
    development: bool = False
    claims: dict[str, Any] = field(default_factory=dict, repr=False)


def _segment_json(segment: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise AuthFailure("TOKEN_MALFORMED", "token segment is not base64url-encoded JSON") from None
    if not isinstance(value, dict):
        raise AuthFailure("TOKEN_MALFORMED", "token segment is not a JSON object")
    return value


class SessionVerifier:
    def __init__(
        self,
        issuers: Iterable[TrustedIssuer],
        *,
        authorized_parties: Iterable[str] = (),
        clock_skew_s: float = 5.0,
        max_token_bytes: int = 8192,
    ) -> None:
        self._issuers = {trusted.issuer: trusted for trusted in issuers}
        self.authorized_parties = frozenset(authorized_parties)
        self.clock_skew_s = clock_skew_s
        self.max_token_bytes = max_token_bytes

    @property
    def issuers(self) -> tuple[TrustedIssuer, ...]:
        return tuple(self._issuers.values())

    async def verify(self, token: str | None) -> VerifiedSession:
        if token is None or is_missing(token):
            raise AuthFailure("TOKEN_MISSING", "no session token: sign in first, or wait until the session is loaded")
        token = token.strip()
        if len(token) > self.max_token_bytes:
            raise AuthFailure(
                "TOKEN_TOO_LARGE", f"token is {len(token)} bytes; the limit is {self.max_token_bytes}", size=len(token)
            )
        parts = token.split(".")
        if len(parts) != 3:
            raise AuthFailure("TOKEN_MALFORMED", f"a JWT has 3 dot-separated segments, this one has {len(parts)}")
        if not (_BASE64URL.match(parts[0]) and _BASE64URL.match(parts[1])) or (
            parts[2] and not _BASE64URL.match(parts[2])
        ):
            raise AuthFailure("TOKEN_MALFORMED", "a token segment is empty or not unpadded base64url")
        header, payload = _segment_json(parts[0]), _segment_json(parts[1])

        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise AuthFailure("ALGORITHM_NOT_ALLOWED", "only RS256 session tokens are accepted", alg=str(alg)[:20])
        if header.get("typ", "JWT") != "JWT":
            raise AuthFailure("TOKEN_MALFORMED", "token type must be JWT", typ=str(header.get("typ"))[:20])
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH:
            raise AuthFailure("TOKEN_MALFORMED", "token header has no usable key id (kid)")

        issuer = payload.get("iss")
        trusted = self._issuers.get(issuer) if isinstance(issuer, str) else None
        if trusted is None:
            shown = str(issuer)[:200]
            raise AuthFailure(
                "ISSUER_NOT_ALLOWED",
                f"token issuer {shown!r} is not a trusted Clerk instance",
                tokenIssuer=shown,
                looksLikeDevelopment=str(isinstance(issuer, str) and looks_like_development_issuer(issuer)).lower(),
                trustedIssuers=",".join(self._issuers),
            )

        try:
            key = await trusted.keys.get_key(kid)
        except KeyLookupError as exc:
            raise AuthFailure(exc.reason, str(exc), keySource=trusted.keys.name) from None

        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=list(ALLOWED_ALGORITHMS),
                issuer=trusted.issuer,
                leeway=self.clock_skew_s,
                options={"require": REQUIRED_CLAIMS, "verify_aud": False},
            )
        except jwt.InvalidSignatureError:
            raise AuthFailure("SIGNATURE_INVALID", "token signature does not verify with the pinned key") from None
        except jwt.ExpiredSignatureError:
            exp = payload.get("exp")
            since = round(time.time() - exp, 1) if isinstance(exp, int | float) else "?"
            raise AuthFailure(
                "TOKEN_EXPIRED",
                f"token expired {since} s ago (allowed skew {self.clock_skew_s:g} s)",
                secondsSinceExpiry=since,
                clockSkewAllowed=self.clock_skew_s,
            ) from None
        except jwt.ImmatureSignatureError:
            starts = [v for v in (payload.get("nbf"), payload.get("iat")) if isinstance(v, int | float)]
            ahead = round(max(starts, default=time.time()) - time.time(), 1)
            raise AuthFailure(
                "TOKEN_NOT_YET_VALID",
                f"token is valid only in {ahead} s: check the clocks (allowed skew {self.clock_skew_s:g} s)",
                secondsUntilValid=ahead,
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthFailure("CLAIM_MISSING", f"token has no {exc.claim!r} claim", claim=exc.claim) from None
        except jwt.InvalidIssuerError:
            raise AuthFailure("ISSUER_NOT_ALLOWED", "token issuer does not match") from None
        except jwt.InvalidAlgorithmError:
            raise AuthFailure("ALGORITHM_NOT_ALLOWED", "only RS256 session tokens are accepted") from None
        except jwt.PyJWTError as exc:
            raise AuthFailure("TOKEN_MALFORMED", f"token is malformed: {exc}"[:200]) from None

        return self._check_session_claims(claims, trusted)

    def _check_session_claims(self, claims: dict[str, Any], trusted: TrustedIssuer) -> VerifiedSession:
        for claim in ("sub", "sid"):
            if not isinstance(claims.get(claim), str) or not claims[claim]:
                raise AuthFailure("CLAIM_MISSING", f"token has no {claim!r} claim", claim=claim)
        version = claims.get("v")
        if version is None:
            raise AuthFailure("CLAIM_MISSING", "token has no 'v' claim (not a v2 session token)", claim="v")
        if version != 2:
            raise AuthFailure(
                "TOKEN_VERSION_UNSUPPORTED", "only Clerk session token version 2 is accepted", version=str(version)[:10]
            )
        if claims.get("sts") == "pending":
            raise AuthFailure("SESSION_PENDING", "the session is pending: finish the sign-in tasks first")
        azp = claims.get("azp")
        if self.authorized_parties:
            if not azp:
                raise AuthFailure("AUTHORIZED_PARTY_NOT_ALLOWED", "token has no azp (authorized party)", azp="")
            if azp not in self.authorized_parties:
                raise AuthFailure(
                    "AUTHORIZED_PARTY_NOT_ALLOWED",
                    f"token was issued to {str(azp)[:100]!r}, which is not an allowed origin",
                    azp=str(azp)[:100],
                )
        raw_org = claims.get("o")
        org: dict[str, Any] = raw_org if isinstance(raw_org, dict) else {}
        return VerifiedSession(
            user_id=trusted.user_id(claims["sub"]),
            session_id=claims["sid"],
            issuer=trusted.issuer,
            expires_at=int(claims["exp"]),
            org_id=str(org.get("id") or claims.get("org_id") or ""),
            org_role=str(org.get("rol") or claims.get("org_role") or ""),
            org_slug=str(org.get("slg") or claims.get("org_slug") or ""),
            authorized_party=str(azp or ""),
            development=trusted.development,
            claims=claims,
        )
