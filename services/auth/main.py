"""Start the auth service: listen first, then load keys and run the self-check in the background."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc

from inkwell.auth.v1 import auth_service_pb2 as pb
from inkwell.auth.v1 import auth_service_pb2_grpc as pb_grpc
from libs.runtime.diagnostics import SERVICE_NAME as DIAGNOSTICS_NAME
from libs.runtime.diagnostics import DiagnosticsServicer
from libs.runtime.diagnostics import register as diagnostics_register
from libs.runtime.entry import run_service
from libs.runtime.identity import InternalTokenVerifier, keys_response_to_jwks
from libs.runtime.jwks import KeySetCache
from libs.runtime.server import ServiceServer, cancel_tasks, start_server
from services.auth.diagnose import auth_checks
from services.auth.service import SERVICE_NAME, AuthComponents, AuthServicer, build_components
from services.auth.settings import AuthSettings

log = logging.getLogger("inkwell.auth")


@dataclass
class RunningAuth:
    server: ServiceServer
    components: AuthComponents
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.port

    async def stop(self) -> None:
        await self.server.stop()
        await cancel_tasks(self.tasks)
        await self.components.close()


async def _follow_readiness(running: ServiceServer, components: AuthComponents) -> None:
    """SERVING for the service name only while every trusted issuer has keys to verify with."""
    was_ready: bool | None = None
    while True:
        ready = components.ready
        if ready != was_ready:
            await running.set_ready(ready, SERVICE_NAME)
            log.info("readiness changed", extra={"ready": ready})
            was_ready = ready
        await asyncio.sleep(0.2 if not ready else 2.0)


def _own_internal_keys(components: AuthComponents) -> KeySetCache:
    """The auth service verifies identity tokens for its own Diagnose with the keys it signs with."""

    async def fetch() -> Mapping[str, Any]:
        return keys_response_to_jwks(pb.GetInternalKeysResponse(keys=components.signer.public_keys()))

    return KeySetCache("internal-identity-local", fetch, allowed_kty=frozenset({"OKP"}), ttl_s=300.0)


async def start_auth(settings: AuthSettings) -> RunningAuth:
    components = build_components(settings)
    if settings.allow_unverified_dev:
        log.warning(
            "ALLOW_UNVERIFIED_JWT_DEV is not honored: every token is verified. "
            "Use the development issuer instead (INKWELL_ENV=development, `inkwell token --user NAME`)",
            extra={"reason": "UNVERIFIED_JWT_SETTING_IGNORED"},
        )
    local_keys = _own_internal_keys(components)
    diagnostics = DiagnosticsServicer(
        SERVICE_NAME,
        "clerk",
        auth_checks(components),
        InternalTokenVerifier(
            list(settings.internal_audiences), local_keys, max_lifetime_s=settings.internal_token_ttl_s
        ),
    )

    def register(server: grpc.aio.Server) -> None:
        pb_grpc.add_AuthServiceServicer_to_server(AuthServicer(components), server)
        diagnostics_register(server, diagnostics)

    server = await start_server(
        domain="auth.inkwell",
        service_names=[SERVICE_NAME, DIAGNOSTICS_NAME],
        register=register,
        host=settings.host,
        port=settings.port,
        grace_s=settings.shutdown_grace_s,
        max_connection_age_s=settings.grpc_max_connection_age_s,
    )
    await server.set_ready(True, DIAGNOSTICS_NAME)
    components.start()
    tasks = [
        asyncio.create_task(components.self_check.run(), name="auth-self-check"),
        asyncio.create_task(_follow_readiness(server, components), name="auth-readiness"),
    ]
    return RunningAuth(server, components, tasks)


def main() -> None:
    run_service("auth", AuthSettings, start_auth)


if __name__ == "__main__":
    main()
