"""The one auth path for every protected route.

A token comes from `Authorization: Bearer` or the `__session` cookie. Each distinct token is
verified once by the auth service (concurrent first requests share that call) and the verified
result is cached under the token's SHA-256 until it expires.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import Any

import grpc
from starlette.requests import Request

from gateway.errors import ApiError
from gateway.session_cache import (
    CACHEABLE_DENIALS,
    DENIAL_TTL_S,
    Denial,
    SessionCache,
    VerifiedSession,
    token_key,
)
from inkwell.auth.v1 import auth_service_pb2 as auth_pb
from inkwell.auth.v1 import auth_service_pb2_grpc as auth_grpc
from libs.runtime import bearer, context
from libs.runtime.client import call_metadata, call_timeout
from libs.runtime.errors import from_rpc_error
from libs.runtime.metrics import AUTH_DECISIONS, SESSION_CACHE

log = logging.getLogger("inkwell.gateway.auth")

SESSION_COOKIE = "__session"


@dataclass(frozen=True)
class AuthenticatedUser:
    """What a route handler gets: the verified principal and the identity token to forward."""

    principal: dict[str, Any]
    internal_token: str

    @property
    def user_id(self) -> str:
        return str(self.principal["user_id"])


def _principal_dict(p: auth_pb.Principal) -> dict[str, Any]:
    return {
        "user_id": p.user_id,
        "session_id": p.session_id,
        "org_id": p.org_id or None,
        "org_role": p.org_role or None,
        "org_slug": p.org_slug or None,
        "expires_at": p.expires_at.ToJsonString(),
        "issuer": p.issuer,
        "development": p.development,
        "authorized_party": p.authorized_party or None,
    }


def client_label(request: Request) -> str:
    """The client network, not the address: enough to group failures, not personal data."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "unknown"
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def token_from_request(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        return bearer.from_authorization(header)
    cookie = request.cookies.get(SESSION_COOKIE)
    return None if bearer.is_missing(cookie) else cookie


class Authenticator:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        cache: SessionCache,
        timeout_s: float,
    ) -> None:
        self.stub = auth_grpc.AuthServiceStub(channel)
        self.cache = cache
        self.timeout_s = timeout_s
        self._inflight: dict[bytes, asyncio.Future[VerifiedSession | Denial]] = {}

    async def __call__(self, request: Request) -> AuthenticatedUser:
        """FastAPI dependency: the verified user, or an ApiError with the reason."""
        try:
            token = token_from_request(request)
            if token is None:
                raise ApiError(
                    401, "TOKEN_MISSING", "no session token: sign in first, or wait until the session is loaded"
                )
            entry = await self._verify(token, request.headers.get("origin", ""))
            if isinstance(entry, Denial):
                raise ApiError(401, entry.reason, entry.message, details={"metadata": entry.metadata})
            AUTH_DECISIONS.labels("allowed", "").inc()
            return AuthenticatedUser(entry.principal, entry.internal_token)
        except ApiError as error:
            AUTH_DECISIONS.labels("denied", error.reason).inc()
            self._log_failure(request, error)
            if error.status == 401:
                error.headers.setdefault("WWW-Authenticate", _www_authenticate(error.reason))
            raise

    async def _verify(self, token: str, origin: str) -> VerifiedSession | Denial:
        key = token_key(token)
        cached = self.cache.get(key)
        SESSION_CACHE.labels("hit" if cached is not None else "miss").inc()
        if cached is not None:
            return cached
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[VerifiedSession | Denial] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            entry = await self._call_auth(token, origin)
            self.cache.put(key, entry)
            future.set_result(entry)
            return entry
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) get it through the shield
            raise
        finally:
            del self._inflight[key]

    async def _call_auth(self, token: str, origin: str) -> VerifiedSession | Denial:
        request = auth_pb.VerifySessionRequest(token=token, origin=origin)
        try:
            response = await self.stub.VerifySession(
                request, timeout=call_timeout(self.timeout_s), metadata=call_metadata()
            )
        except grpc.aio.AioRpcError as exc:
            remote = from_rpc_error(exc)
            if remote.code == grpc.StatusCode.UNAUTHENTICATED:
                ttl = DENIAL_TTL_S if remote.reason in CACHEABLE_DENIALS else 0.0
                return Denial(remote.reason, remote.message, remote.metadata, time.time() + ttl)
            if remote.reason in ("BACKEND_UNAVAILABLE", "DEADLINE_EXCEEDED", "UNKNOWN"):
                raise ApiError(
                    503,
                    "AUTH_UNAVAILABLE",
                    f"the auth service did not answer ({remote.reason})",
                    headers={"Retry-After": "2"},
                ) from None
            raise ApiError.from_remote(remote, "auth") from None
        principal = _principal_dict(response.principal)
        valid_until = SessionCache.session_valid_until(
            response.principal.expires_at.seconds, response.internal_token_expires_at.seconds
        )
        return VerifiedSession(principal, response.internal_token, valid_until)

    def _log_failure(self, request: Request, error: ApiError) -> None:
        """One line per (reason, route) per window: libs/runtime/logs.py collapses the repeats
        into a "(repeated) N" summary (no second collapse layer here to drop it)."""
        route = getattr(request.scope.get("route"), "path", request.url.path)
        ctx = context.get()
        log.warning(
            "authentication failed",
            extra={
                "reason": error.reason,
                "route": route,
                "client": client_label(request),
                "status": error.status,
                "first_request_id": ctx.request_id if ctx else None,
            },
        )


def _www_authenticate(reason: str) -> str:
    if reason == "TOKEN_MISSING":
        return 'Bearer realm="inkwell"'
    return f'Bearer realm="inkwell", error="invalid_token", error_description="{reason}"'
