"""Run the gateway under uvicorn with JSON logs and validated settings."""

from __future__ import annotations

import sys

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from libs.runtime import logs
from libs.runtime.settings import ConfigError, load


def main() -> None:
    try:
        settings = load(GatewaySettings)
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logs.configure("gateway", settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        # the loop watch times callbacks through asyncio's Handle, which uvloop does not use
        loop="asyncio" if settings.loop_block_warn_ms > 0 else "auto",
    )


if __name__ == "__main__":
    main()
