"""Start the auth service: listen first, then load keys and run the self-check in the background."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from inkwell.auth.v1 import auth_service_pb2_grpc as pb_grpc
from libs.runtime.entry import run_service
from libs.runtime.server import ServiceServer, cancel_tasks, start_server
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
            await running.set_ready(ready)
            log.info("readiness changed", extra={"ready": ready})
            was_ready = ready
        await asyncio.sleep(0.2 if not ready else 2.0)


async def start_auth(settings: AuthSettings) -> RunningAuth:
    components = build_components(settings)
    if settings.allow_unverified_dev:
        log.warning(
            "ALLOW_UNVERIFIED_JWT_DEV is not honored: every token is verified. "
            "Use the development issuer instead (INKWELL_ENV=development, `inkwell token --user NAME`)",
            extra={"reason": "UNVERIFIED_JWT_SETTING_IGNORED"},
        )
    server = await start_server(
        domain="auth.inkwell",
        service_names=[SERVICE_NAME],
        register=lambda s: pb_grpc.add_AuthServiceServicer_to_server(AuthServicer(components), s),
        host=settings.host,
        port=settings.port,
        grace_s=settings.shutdown_grace_s,
        max_connection_age_s=settings.grpc_max_connection_age_s,
    )
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
