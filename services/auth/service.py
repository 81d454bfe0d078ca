"""AuthService: wires settings to the verifier, the key caches and the internal signer."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import grpc
import httpx
from google.protobuf import duration_pb2, timestamp_pb2

from inkwell.auth.v1 import auth_service_pb2 as pb
from inkwell.auth.v1 import auth_service_pb2_grpc as pb_grpc
from libs.runtime import service_key
from libs.runtime.errors import ServiceError
from libs.runtime.identity import INTERNAL_ISSUER
from libs.runtime.jwks import KeySetCache
from libs.runtime.metrics import AUTH_DECISIONS
from libs.runtime.protoenum import to_enum
from libs.runtime.service_key import ensure_service_key
from services.auth.dev_issuer import DevIssuer
from services.auth.internal_tokens import InternalSigner
from services.auth.key_sources import (
    JwksKeySource,
    KeySource,
    StaticKeySource,
    backend_api_jwks_url,
    frontend_api_jwks_url,
    http_jwks_fetcher,
)
from services.auth.self_check import ConfigSelfCheck
from services.auth.settings import AuthSettings
from services.auth.verifier import AuthFailure, SessionVerifier, TrustedIssuer

log = logging.getLogger("inkwell.auth")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["AuthService"].full_name


def _timestamp(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds)


@dataclass
class AuthComponents:
    settings: AuthSettings
    verifier: SessionVerifier
    signer: InternalSigner
    self_check: ConfigSelfCheck
    http: httpx.AsyncClient
    service_key: str = ""
    caches: list[KeySetCache] = field(default_factory=list)
    key_source_names: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return all(trusted.keys.loaded for trusted in self.verifier.issuers)

    def start(self) -> None:
        for cache in self.caches:
            cache.start()

    async def close(self) -> None:
        for cache in self.caches:
            await cache.close()
        await self.http.aclose()


def build_components(settings: AuthSettings) -> AuthComponents:
    http = httpx.AsyncClient(timeout=httpx.Timeout(settings.jwks_timeout_s), follow_redirects=False)
    issuers: list[TrustedIssuer] = []
    caches: list[KeySetCache] = []
    if settings.clerk_issuer:
        source: KeySource
        if settings.jwt_key:
            source = StaticKeySource("pem", settings.jwt_key)
        else:
            if settings.publishable_key or settings.frontend_api_url or not settings.secret_key:
                name, url = "frontend_api", frontend_api_jwks_url(settings.clerk_frontend_api_url)
                headers: dict[str, str] = {}
            else:
                name, url = "backend_api", backend_api_jwks_url(settings.backend_api_url)
                headers = {"Authorization": f"Bearer {settings.secret_key}"}
            cache = KeySetCache(
                name,
                http_jwks_fetcher(http, url, headers),
                allowed_kty=frozenset({"RSA"}),
                ttl_s=settings.jwks_ttl_s,
                unknown_kid_cooldown_s=settings.jwks_cooldown_s,
                fetch_timeout_s=settings.jwks_timeout_s,
            )
            caches.append(cache)
            source = JwksKeySource(name, cache)
        issuers.append(TrustedIssuer(settings.clerk_issuer, source))
    if settings.dev_issuer:
        issuers.append(DevIssuer(settings.data_dir).trusted_issuer())
    verifier = SessionVerifier(
        issuers,
        authorized_parties=settings.authorized_parties,
        clock_skew_s=settings.clock_skew_s,
        max_token_bytes=settings.max_token_bytes,
    )
    return AuthComponents(
        settings=settings,
        verifier=verifier,
        signer=InternalSigner(settings.data_dir, settings.internal_token_ttl_s),
        service_key=ensure_service_key(settings.service_key, settings.data_dir),
        self_check=ConfigSelfCheck(settings, http),
        http=http,
        caches=caches,
        key_source_names=[trusted.keys.name for trusted in issuers],
    )


class AuthServicer(pb_grpc.AuthServiceServicer):
    def __init__(self, components: AuthComponents) -> None:
        self.c = components

    async def VerifySession(
        self, request: pb.VerifySessionRequest, context: grpc.aio.ServicerContext
    ) -> pb.VerifySessionResponse:
        try:
            session = await self.c.verifier.verify(request.token)
        except AuthFailure as failure:
            AUTH_DECISIONS.labels("denied", failure.reason).inc()
            code = grpc.StatusCode.UNAUTHENTICATED
            if failure.reason == "JWKS_UNAVAILABLE":
                code = grpc.StatusCode.UNAVAILABLE
            metadata = dict(failure.metadata)
            if request.origin:
                metadata["requestOrigin"] = request.origin[:100]
            raise ServiceError(code, failure.reason, failure.message, metadata) from None
        audiences = self._audiences(request.audiences)
        token, exp = self.c.signer.mint(session, audiences)
        AUTH_DECISIONS.labels("allowed", "").inc()
        principal = pb.Principal(
            user_id=session.user_id,
            session_id=session.session_id,
            org_id=session.org_id,
            org_role=session.org_role,
            org_slug=session.org_slug,
            expires_at=_timestamp(session.expires_at),
            issuer=session.issuer,
            development=session.development,
            authorized_party=session.authorized_party,
        )
        return pb.VerifySessionResponse(
            principal=principal, internal_token=token, internal_token_expires_at=_timestamp(exp)
        )

    def _audiences(self, asked: Iterable[str]) -> list[str]:
        """The audiences to mint for: those asked (all known ones when none), each one known."""
        known = self.c.settings.internal_audiences
        audiences = list(asked) or list(known)
        unknown = [a for a in audiences if a not in known]
        if unknown:
            raise ServiceError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "AUDIENCE_UNKNOWN",
                f"unknown audiences {unknown[:5]}",
                {"known": ",".join(known)},
            )
        return audiences

    async def MintServiceIdentity(
        self, request: pb.MintServiceIdentityRequest, context: grpc.aio.ServicerContext
    ) -> pb.MintServiceIdentityResponse:
        presented = dict(context.invocation_metadata() or ()).get(service_key.METADATA_KEY)
        if not service_key.matches(self.c.service_key, presented if isinstance(presented, str) else None):
            raise ServiceError(
                grpc.StatusCode.PERMISSION_DENIED,
                "SERVICE_KEY_INVALID",
                "minting an identity without a session needs the service key (INKWELL_SERVICE_KEY)",
            )
        if not request.user_id or len(request.user_id) > 255:
            raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_INVALID", "user_id: 1 to 255 characters")
        audiences = self._audiences(request.audiences)
        actor = (request.actor or "service")[:64]
        token, exp = self.c.signer.mint_for_service(request.user_id, request.org_id, audiences, actor)
        log.info("service identity minted", extra={"actor": actor, "audiences": audiences})
        return pb.MintServiceIdentityResponse(internal_token=token, expires_at=_timestamp(exp))

    async def GetInternalKeys(
        self, request: pb.GetInternalKeysRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetInternalKeysResponse:
        return pb.GetInternalKeysResponse(
            keys=self.c.signer.public_keys(), issuer=INTERNAL_ISSUER, max_age=duration_pb2.Duration(seconds=300)
        )

    async def CheckConfig(
        self, request: pb.CheckConfigRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckConfigResponse:
        check = self.c.self_check
        return pb.CheckConfigResponse(
            state=pb.CHECK_STATE_DONE if check.done else pb.CHECK_STATE_RUNNING,
            findings=[f.to_proto() for f in check.findings],
            trusted_issuers=[t.issuer for t in self.c.verifier.issuers],
            key_sources=[to_enum(pb.KeySource, name) for name in self.c.key_source_names],
        )
