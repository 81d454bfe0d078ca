"""Internal identity tokens: minted by the auth service, checked by every internal service.

The gateway verifies the Clerk token once and forwards a short-lived Ed25519 JWT; services trust
only that, never a user id in a request body or a plain header.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import jwt

from inkwell.auth.v1 import auth_service_pb2, auth_service_pb2_grpc
from libs.runtime.context import Identity
from libs.runtime.errors import ServiceError
from libs.runtime.jwks import JwksUnavailable, KeyLookupError, KeySetCache

INTERNAL_ISSUER = "inkwell-auth"
INTERNAL_ALGORITHM = "EdDSA"
AUTHORIZATION_METADATA = "authorization"


def _denied(reason: str, message: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.UNAUTHENTICATED, reason, message)


class InternalTokenVerifier:
    """Checks the internal identity token of one service audience (or, for the auth service's own
    Diagnose, any one of the audiences it mints for).

    `max_lifetime_s` bounds `exp - iat`: the auth service mints at most that, so a longer token was
    signed by someone else holding the key (a stolen data volume), not by auth.
    """

    def __init__(
        self,
        audience: str | Sequence[str],
        keys: KeySetCache,
        *,
        max_lifetime_s: float = 60.0,
        leeway_s: float = 5.0,
        cache_size: int = 4096,
    ) -> None:
        self.audience = audience
        self.keys = keys
        self.max_lifetime_s = max_lifetime_s
        self.leeway_s = leeway_s
        self.cache_size = cache_size
        self._verified: dict[str, Identity] = {}  # token -> identity, until the token expires

    @property
    def _audience_text(self) -> str:
        return self.audience if isinstance(self.audience, str) else " or ".join(self.audience)

    async def verify(self, token: str | None) -> Identity:
        if not token:
            raise _denied("IDENTITY_MISSING", "this service needs an internal identity token from the gateway")
        cached = self._verified.get(token)
        if cached is not None and cached.expires_at > time.time():
            return cached
        identity = await self._verify(token)
        if len(self._verified) >= self.cache_size:
            now = time.time()
            self._verified = {t: i for t, i in self._verified.items() if i.expires_at > now}
            if len(self._verified) >= self.cache_size:
                self._verified.clear()
        self._verified[token] = identity
        return identity

    async def _verify(self, token: str) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _denied("IDENTITY_INVALID", "internal identity token is malformed") from None
        if header.get("alg") != INTERNAL_ALGORITHM or not isinstance(header.get("kid"), str):
            raise _denied("IDENTITY_INVALID", "internal identity token has the wrong algorithm or no key id")
        try:
            key = await self.keys.get_key(header["kid"])
        except JwksUnavailable as exc:
            raise ServiceError(grpc.StatusCode.UNAVAILABLE, "IDENTITY_KEYS_UNAVAILABLE", str(exc)) from None
        except KeyLookupError:
            raise _denied("IDENTITY_INVALID", "internal identity token is signed by an unknown key") from None
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[INTERNAL_ALGORITHM],
                audience=self.audience,
                issuer=INTERNAL_ISSUER,
                leeway=self.leeway_s,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise _denied("IDENTITY_EXPIRED", "internal identity token has expired") from None
        except jwt.InvalidAudienceError:
            raise _denied(
                "IDENTITY_WRONG_AUDIENCE", f"internal identity token is not meant for {self._audience_text}"
            ) from None
        except jwt.PyJWTError:
            raise _denied("IDENTITY_INVALID", "internal identity token failed verification") from None
        iat, exp = claims["iat"], claims["exp"]
        if not isinstance(iat, int | float) or not isinstance(exp, int | float):
            raise _denied("IDENTITY_INVALID", "internal identity token has a non-numeric iat or exp")
        if exp - iat > self.max_lifetime_s:
            raise _denied(
                "IDENTITY_LIFETIME_TOO_LONG",
                f"internal identity token lives {exp - iat:.0f} s; at most {self.max_lifetime_s:.0f} s is accepted",
            )
        aud = claims["aud"]
        return Identity(
            user_id=str(claims["sub"]),
            session_id=str(claims.get("sid", "")),
            org_id=str(claims.get("org", "")),
            audiences=tuple(aud) if isinstance(aud, list) else (str(aud),),
            expires_at=float(claims["exp"]),
        )


def keys_response_to_jwks(response: auth_service_pb2.GetInternalKeysResponse) -> dict[str, Any]:
    return {
        "keys": [
            {"kid": k.key_id, "kty": k.key_type, "crv": k.curve, "x": k.x, "alg": k.algorithm, "use": "sig"}
            for k in response.keys
        ]
    }


def auth_service_key_fetcher(channel: grpc.aio.Channel, timeout_s: float = 5.0) -> Any:
    """A KeySetCache fetcher that reads the internal keys from the auth service."""
    stub = auth_service_pb2_grpc.AuthServiceStub(channel)

    async def fetch() -> Mapping[str, Any]:
        try:
            response = await stub.GetInternalKeys(auth_service_pb2.GetInternalKeysRequest(), timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise ConnectionError(f"auth service answered {exc.code().name}: {(exc.details() or '')[:120]}") from None
        return keys_response_to_jwks(response)

    return fetch


def internal_key_cache(channel: grpc.aio.Channel) -> KeySetCache:
    return KeySetCache(
        "internal-identity", auth_service_key_fetcher(channel), allowed_kty=frozenset({"OKP"}), ttl_s=300.0
    )


def bearer_from_metadata(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == AUTHORIZATION_METADATA and isinstance(value, str) and value.startswith("Bearer "):
            return value[len("Bearer ") :].strip() or None
    return None
