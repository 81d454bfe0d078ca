"""Run the gateway under uvicorn with JSON logs, validated settings and a drain window.

SIGTERM does not stop the listener at once: for INKWELL_DRAIN_S seconds /readyz answers 503
SHUTTING_DOWN while every request (in flight or new) is still served, so a load balancer notices
and moves traffic first; then uvicorn stops accepting and gives in-flight requests
INKWELL_SHUTDOWN_GRACE_S. A second signal stops at once.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from types import FrameType

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from libs.runtime import logs
from libs.runtime.settings import ConfigError, load

log = logging.getLogger("inkwell.gateway")

# The most request-head bytes h11 buffers; heads between INKWELL_MAX_HEADER_BYTES and this get a
# JSON 431/401 from gateway/header_limits.py, larger ones h11's own 400 with the connection closed.
HEAD_BUFFER_BYTES = 8 * 1024 * 1024


class DrainingServer(uvicorn.Server):
    """uvicorn's server with a drain window between the first SIGTERM/SIGINT and the shutdown."""

    def __init__(self, config: uvicorn.Config, drain_s: float, on_drain: Callable[[], None]) -> None:
        super().__init__(config)
        self.drain_s = drain_s
        self.on_drain = on_drain
        self.drain_until: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not uvicorn's handler: that one re-raises the signal after shutdown, which kills the
        # process before the log's pending "(repeated) N" summaries are written.
        if self.drain_until is None:
            self.drain_until = time.monotonic() + self.drain_s
            self.on_drain()
        elif self.should_exit:
            self.force_exit = True
        else:
            self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self.drain_until is not None and time.monotonic() >= self.drain_until and not self.should_exit:
            log.info("drain window over; stopping", extra={"drain_s": self.drain_s})
            self.should_exit = True
        return await super().on_tick(counter)


def main() -> None:
    try:
        settings = load(GatewaySettings)
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logs.configure("gateway", settings.log_level, settings.failure_log_window_s)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        http="h11",
        h11_max_incomplete_event_size=max(HEAD_BUFFER_BYTES, 2 * settings.max_header_bytes),
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        # the loop watch times callbacks through asyncio's Handle, which uvloop does not use
        loop="asyncio" if settings.loop_block_warn_ms > 0 else "auto",
    )

    def on_drain() -> None:
        app.state.inkwell.begin_drain()
        log.info("shutting down: draining", extra={"drain_s": settings.drain_s})

    try:
        DrainingServer(config, settings.drain_s, on_drain).run()
    finally:
        log.info("stopped")
        logs.shutdown()


if __name__ == "__main__":
    main()
