"""Build, run and stop a grpc.aio server the same way for every Inkwell service.

Health: the server name "" is SERVING once the process listens (liveness); each service name is
NOT_SERVING until the service says it can work (readiness). A fresh HealthServicer would answer
SERVING for nothing and NOT_FOUND for unset names, so names are set explicitly here.
SIGTERM/SIGINT: every name goes NOT_SERVING at once, the server keeps answering for the drain
window (INKWELL_DRAIN_S, so a load balancer watching health moves traffic away first; a second
signal cuts it short), then `server.stop(grace)` lets in-flight calls finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from libs.runtime.client import KEEPALIVE_MS
from libs.runtime.identity import InternalTokenVerifier
from libs.runtime.interceptor import RuntimeInterceptor

log = logging.getLogger("inkwell.server")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def server_options(
    client_keepalive_ms: int = KEEPALIVE_MS, max_connection_age_s: float = 300.0
) -> list[tuple[str, int]]:
    """Server options that accept the clients' keepalive (libs/runtime/client.py channel_options).

    gRPC's server-side name is `grpc.http2.min_ping_interval_without_data_ms` (the minimum interval
    between pings it accepts without data, default 5 min); pings more often than that are strikes
    and end in GOAWAY "too_many_pings". It is set to a third of the clients' interval.
    Connections close after `max_connection_age_s` (INKWELL_GRPC_MAX_CONNECTION_AGE_S): clients then
    re-resolve DNS, so replicas added behind a headless Service get traffic.
    """
    return [
        ("grpc.keepalive_time_ms", client_keepalive_ms),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", max(1, client_keepalive_ms // 3)),
        ("grpc.max_connection_age_ms", int(max_connection_age_s * 1000)),
        ("grpc.max_connection_age_grace_ms", 30_000),
    ]


SERVER_OPTIONS = server_options()


@dataclass
class ServiceServer:
    """A started server: its bound port, health servicer and the names it reports."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    service_names: tuple[str, ...]
    grace_s: float
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)

    async def set_ready(self, ready: bool, name: str | None = None) -> None:
        for service_name in (name,) if name else self.service_names:
            await self.health.set(service_name, SERVING if ready else NOT_SERVING)

    async def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.grace_s)

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()


async def start_server(
    *,
    domain: str,
    service_names: Iterable[str],
    register: Callable[[grpc.aio.Server], None],
    host: str,
    port: int,
    verifier: InternalTokenVerifier | None = None,
    grace_s: float = 10.0,
    options: list[tuple[str, int]] | None = None,
    max_connection_age_s: float = 300.0,
) -> ServiceServer:
    """Start listening now; every service name starts NOT_SERVING until `set_ready(True)`."""
    names = tuple(service_names)
    server = grpc.aio.server(
        interceptors=[RuntimeInterceptor(domain, verifier)],
        options=options or server_options(max_connection_age_s=max_connection_age_s),
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    register(server)
    reflection.enable_server_reflection((*names, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    for name in names:
        await health_servicer.set(name, NOT_SERVING)
    await server.start()
    await health_servicer.set("", SERVING)
    log.info("listening", extra={"address": f"{host}:{bound}", "services": list(names)})
    return ServiceServer(server, bound, health_servicer, names, grace_s)


async def cancel_tasks(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel background tasks and wait until each has finished."""
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run_until_signal(running: ServiceServer, drain_s: float = 0.0) -> None:
    """Serve until SIGTERM or SIGINT; then NOT_SERVING, keep serving `drain_s`, then stop."""
    loop = asyncio.get_running_loop()
    signals = asyncio.Queue[int]()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signals.put_nowait, sig)
    await signals.get()
    log.info("shutting down", extra={"drain_s": drain_s, "grace_s": running.grace_s})
    await running.health.enter_graceful_shutdown()  # every name NOT_SERVING; later set()s ignored
    if drain_s > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(signals.get(), timeout=drain_s)
    log.info("drain window over; stopping")
    await running.stop()
    log.info("stopped")
