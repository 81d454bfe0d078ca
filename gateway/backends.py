"""The gateway's backends: one long-lived gRPC channel each, and their readiness."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.runtime.client import call_metadata, call_timeout, open_channel


@dataclass
class Backend:
    name: str
    address: str
    service_name: str
    channel: grpc.aio.Channel

    async def readiness(self, timeout_s: float) -> str:
        """The health status of the service name (readiness), or why it could not be read."""
        stub = health_pb2_grpc.HealthStub(self.channel)
        try:
            response = await stub.Check(
                health_pb2.HealthCheckRequest(service=self.service_name),
                timeout=call_timeout(timeout_s),
                metadata=call_metadata(),
            )
        except grpc.aio.AioRpcError as exc:
            return "UNREACHABLE" if exc.code() == grpc.StatusCode.UNAVAILABLE else exc.code().name
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


class Backends:
    """Readiness answers are cached for `cache_s`: pollers (readyz, monitoring) share one probe."""

    def __init__(self, cache_s: float = 1.0) -> None:
        self._backends: dict[str, Backend] = {}
        self.cache_s = cache_s
        self._cached: tuple[float, dict[str, str]] | None = None
        self._probe: asyncio.Task[dict[str, str]] | None = None

    def add(self, name: str, address: str, service_name: str) -> Backend:
        backend = Backend(name, address, service_name, open_channel(address))
        self._backends[name] = backend
        return backend

    def __getitem__(self, name: str) -> Backend:
        return self._backends[name]

    async def readiness(self, timeout_s: float) -> dict[str, str]:
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self.cache_s:
            return dict(self._cached[1])
        if self._probe is None:
            self._probe = asyncio.create_task(self._read(timeout_s))
        probe = self._probe
        try:
            states = await asyncio.shield(probe)
        finally:
            if probe.done():
                self._probe = None
        self._cached = (time.monotonic(), states)
        return dict(states)

    async def _read(self, timeout_s: float) -> dict[str, str]:
        names = list(self._backends)
        states = await asyncio.gather(*(self._backends[n].readiness(timeout_s) for n in names))
        return dict(zip(names, states, strict=True))

    async def close(self) -> None:
        for backend in self._backends.values():
            await backend.channel.close()
