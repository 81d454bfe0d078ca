"""Keepalive: an idle channel with the clients' keepalive stays connected through many pings
(the server accepts them instead of answering GOAWAY too_many_pings), and idempotent internal
calls get one retry on UNAVAILABLE before the caller sees it."""

from __future__ import annotations

import asyncio
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inkwell.auth.v1 import auth_service_pb2 as auth_pb
from inkwell.auth.v1 import auth_service_pb2_grpc as auth_grpc
from libs.runtime.client import open_channel
from libs.runtime.errors import ServiceError
from libs.runtime.server import server_options, start_server

KEEPALIVE_MS = 300  # the production ratio (client interval vs the server's accepted minimum), 100x faster
SOAK_S = 4.0  # about 13 ping intervals: gRPC's default allows 2 strikes before GOAWAY


async def test_idle_channel_survives_keepalive_pings() -> None:
    running = await start_server(
        domain="test.inkwell",
        service_names=["inkwell.test.v1.Idle"],
        register=lambda server: None,
        host="127.0.0.1",
        port=0,
        options=server_options(KEEPALIVE_MS),
    )
    channel = open_channel(f"127.0.0.1:{running.port}", keepalive_ms=KEEPALIVE_MS)
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert channel.get_state() is grpc.ChannelConnectivity.READY
        changes: list[grpc.ChannelConnectivity] = []

        async def watch() -> None:
            state = channel.get_state()
            while True:
                await channel.wait_for_state_change(state)
                state = channel.get_state()
                changes.append(state)

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(SOAK_S)  # idle on purpose: only keepalive pings cross the connection
        watcher.cancel()
        # A GOAWAY (too_many_pings) closes the connection: the channel leaves READY (IDLE, then
        # CONNECTING on the next call). Staying READY with no transition means no GOAWAY came.
        assert changes == [] and channel.get_state() is grpc.ChannelConnectivity.READY
        started = time.monotonic()
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING and time.monotonic() - started < 1
    finally:
        await channel.close()
        await running.stop()


class FlakyAuth(auth_grpc.AuthServiceServicer):
    """Answers UNAVAILABLE to the first VerifySession, like a connection that just got a GOAWAY."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def VerifySession(
        self, request: auth_pb.VerifySessionRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb.VerifySessionResponse:
        self.calls += 1
        if self.calls <= self.failures:
            raise ServiceError(grpc.StatusCode.UNAVAILABLE, "BACKEND_UNAVAILABLE", "connection going away")
        return auth_pb.VerifySessionResponse(internal_token="t")


async def _verify_with(failures: int) -> tuple[grpc.StatusCode | None, int]:
    servicer = FlakyAuth(failures)
    running = await start_server(
        domain="auth.inkwell",
        service_names=["inkwell.auth.v1.AuthService"],
        register=lambda server: auth_grpc.add_AuthServiceServicer_to_server(servicer, server),
        host="127.0.0.1",
        port=0,
    )
    channel = open_channel(f"127.0.0.1:{running.port}")
    try:
        await auth_grpc.AuthServiceStub(channel).VerifySession(auth_pb.VerifySessionRequest(token="x"), timeout=5)
        code = None
    except grpc.aio.AioRpcError as exc:
        code = exc.code()
    finally:
        await channel.close()
        await running.stop()
    return code, servicer.calls


async def test_verify_session_is_retried_once_on_unavailable() -> None:
    assert await _verify_with(1) == (None, 2)  # one UNAVAILABLE is absorbed by the retry
    assert await _verify_with(2) == (grpc.StatusCode.UNAVAILABLE, 2)  # exactly one retry, then the caller knows
