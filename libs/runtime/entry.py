"""The `python -m services.<name>` entry point every gRPC service shares: validate settings (exit
2 naming the setting and the fix), JSON logs, optional metrics listener, serve until SIGTERM."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from pydantic_settings import BaseSettings

from libs.runtime import logs, metrics
from libs.runtime.server import ServiceServer, run_until_signal
from libs.runtime.settings import ConfigError, load


class Running(Protocol):
    server: ServiceServer

    async def stop(self) -> None: ...


S = TypeVar("S", bound=BaseSettings)


def run_service(name: str, settings_type: type[S], start: Callable[[S], Awaitable[Any]]) -> None:
    async def serve() -> None:
        settings = load(settings_type)
        logs.configure(name, getattr(settings, "log_level", "INFO"))
        metrics.serve(getattr(settings, "metrics_port", None), getattr(settings, "host", "127.0.0.1"))
        running: Running = await start(settings)
        try:
            await run_until_signal(running.server, float(getattr(settings, "drain_s", 0.0)))
        finally:
            await running.stop()
            logs.shutdown()

    try:
        asyncio.run(serve())
    except ConfigError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
