"""The shared runtime: identity required on every method but health and reflection, errors as
google.rpc.Status with exactly one ErrorInfo, request ids carried across, health semantics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from inkwell.auth.v1 import auth_service_pb2 as pb
from libs.runtime import context
from libs.runtime.client import call_metadata, call_timeout, deadline
from libs.runtime.errors import ServiceError, from_rpc_error
from libs.runtime.identity import InternalTokenVerifier, internal_key_cache
from libs.runtime.server import ServiceServer, start_server
from tests.conftest import clerk_env
from tests.support.fake_clerk import FakeClerk, TokenFactory
from tests.support.grpc_errors import error_infos, single_error_info

SERVICE = "inkwell.test.v1.EchoService"
AUDIENCE = "inkwell.index"


def identity_bytes(request: bytes, ctx: grpc.aio.ServicerContext) -> bytes:
    current = context.get()
    assert current is not None and current.identity is not None
    return f"{current.identity.user_id}|{current.request_id}|{current.trace_id}".encode()


def budget(request: bytes, ctx: grpc.aio.ServicerContext) -> bytes:
    """What an outbound call made while serving this request would get as its timeout."""
    return f"{call_timeout(30.0):.3f}".encode()


async def fail(request: bytes, ctx: grpc.aio.ServicerContext) -> bytes:
    if request == b"expected":
        raise ServiceError(
            grpc.StatusCode.UNAVAILABLE, "INDEX_NOT_READY", "not yet", {"state": "LOADING_MODEL"}, retry_after_s=2.5
        )
    raise KeyError("a defect")


def register(server: grpc.aio.Server) -> None:
    def raw(fn: Any) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(fn)

    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                SERVICE, {"Whoami": raw(identity_bytes), "Fail": raw(fail), "Budget": raw(budget)}
            )
        ]
    )


@pytest.fixture
async def stack(start_auth_service: Any, fake_clerk: FakeClerk, tmp_path: Any) -> AsyncIterator[Any]:
    auth = await start_auth_service(**clerk_env(fake_clerk, tmp_path / "d"))
    auth_channel = grpc.aio.insecure_channel(f"127.0.0.1:{auth.running.port}")
    keys = internal_key_cache(auth_channel)
    server = await start_server(
        domain="test.inkwell",
        service_names=[SERVICE],
        register=register,
        host="127.0.0.1",
        port=0,
        verifier=InternalTokenVerifier(AUDIENCE, keys),
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    yield auth, server, channel
    await channel.close()
    await server.stop()
    await keys.close()
    await auth_channel.close()


async def call(
    channel: grpc.aio.Channel,
    method: str,
    body: bytes = b"",
    token: str | None = None,
    metadata: list[tuple[str, str]] | None = None,
) -> bytes:
    md = list(metadata or [])
    if token is not None:
        md.append(("authorization", f"Bearer {token}"))
    result: bytes = await channel.unary_unary(f"/{SERVICE}/{method}")(body, timeout=5, metadata=md)
    return result


async def internal_token(auth: Any, tokens: TokenFactory, audiences: list[str] | None = None) -> str:
    response = await auth.stub.VerifySession(
        pb.VerifySessionRequest(token=tokens.mint(), audiences=audiences or []), timeout=5
    )
    return str(response.internal_token)


async def refused(coro: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await coro
    return caught.value.code(), single_error_info(caught.value).reason


async def test_valid_identity_reaches_the_handler_with_request_id(stack: Any, tokens: TokenFactory) -> None:
    auth, _server, channel = stack
    token = await internal_token(auth, tokens)
    trace = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    body = await call(channel, "Whoami", token=token, metadata=[("x-request-id", "req-123"), ("traceparent", trace)])
    assert body.decode() == f"user_alice|req-123|{'ab' * 16}"


async def test_calls_without_identity_are_refused(stack: Any, tokens: TokenFactory) -> None:
    _auth, _server, channel = stack
    assert await refused(call(channel, "Whoami")) == (grpc.StatusCode.UNAUTHENTICATED, "IDENTITY_MISSING")
    assert await refused(call(channel, "Whoami", token="garbage")) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "IDENTITY_INVALID",
    )


async def test_forged_identity_is_refused(stack: Any, tokens: TokenFactory) -> None:
    auth, _server, channel = stack
    real = await internal_token(auth, tokens)
    kid = jwt.get_unverified_header(real)["kid"]
    claims = jwt.decode(real, options={"verify_signature": False})
    forged = jwt.encode(
        {**claims, "sub": "user_mallory"}, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid}
    )
    assert await refused(call(channel, "Whoami", token=forged)) == (grpc.StatusCode.UNAUTHENTICATED, "IDENTITY_INVALID")
    other_kid = jwt.encode(claims, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "int_x"})
    assert await refused(call(channel, "Whoami", token=other_kid)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "IDENTITY_INVALID",
    )
    hs = jwt.encode(claims, "secret-secret-secret-secret-secret", algorithm="HS256", headers={"kid": kid})
    assert await refused(call(channel, "Whoami", token=hs)) == (grpc.StatusCode.UNAUTHENTICATED, "IDENTITY_INVALID")


async def test_expired_identity_is_refused(stack: Any, tokens: TokenFactory) -> None:
    auth, _server, channel = stack
    signer = auth.running.components.signer
    from services.auth.verifier import VerifiedSession

    session = VerifiedSession("user_alice", "sess_1", "iss", expires_at=int(time.time()) - 30)
    expired, _ = signer.mint(session, [AUDIENCE])
    assert await refused(call(channel, "Whoami", token=expired)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "IDENTITY_EXPIRED",
    )


def sign_with_the_real_key(auth: Any, **claims: Any) -> str:
    """What someone holding the data volume's internal Ed25519 key can sign, without auth."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from services.auth.internal_tokens import KEY_FILE

    signer = auth.running.components.signer
    key = load_pem_private_key((auth.running.components.settings.data_dir / KEY_FILE).read_bytes(), password=None)
    now = int(time.time())
    base = {"iss": "inkwell-auth", "sub": "user_alice", "aud": [AUDIENCE], "iat": now, "exp": now + 60}
    base.update(claims)
    payload = {k: v for k, v in base.items() if v is not None}
    return jwt.encode(payload, key, algorithm="EdDSA", headers={"kid": signer.kid})  # type: ignore[arg-type]


async def test_identity_living_longer_than_the_ttl_is_refused(stack: Any) -> None:
    auth, _server, channel = stack
    now = int(time.time())
    assert (await call(channel, "Whoami", token=sign_with_the_real_key(auth))).startswith(b"user_alice|")
    for token in (
        sign_with_the_real_key(auth, iat=now, exp=now + 3600),
        sign_with_the_real_key(auth, iat=now - 3000, exp=now + 600),
        sign_with_the_real_key(auth, iat=now, exp=now + 61),
    ):
        assert await refused(call(channel, "Whoami", token=token)) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "IDENTITY_LIFETIME_TOO_LONG",
        )
    no_iat = sign_with_the_real_key(auth, iat=None)
    assert await refused(call(channel, "Whoami", token=no_iat)) == (grpc.StatusCode.UNAUTHENTICATED, "IDENTITY_INVALID")


async def test_identity_for_another_audience_is_refused(stack: Any, tokens: TokenFactory) -> None:
    auth, _server, channel = stack
    token = await internal_token(auth, tokens, audiences=["inkwell.llm"])
    assert await refused(call(channel, "Whoami", token=token)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "IDENTITY_WRONG_AUDIENCE",
    )


async def test_unknown_audience_cannot_be_requested(stack: Any, tokens: TokenFactory) -> None:
    auth, _, _ = stack
    code, reason = await refused(
        auth.stub.VerifySession(pb.VerifySessionRequest(token=tokens.mint(), audiences=["inkwell.nope"]), timeout=5)
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "AUDIENCE_UNKNOWN")


async def test_errors_carry_exactly_one_error_info(stack: Any, tokens: TokenFactory) -> None:
    auth, _server, channel = stack
    token = await internal_token(auth, tokens)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(channel, "Fail", b"expected", token=token)
    remote = from_rpc_error(caught.value)
    assert (remote.code, remote.reason, remote.domain) == (
        grpc.StatusCode.UNAVAILABLE,
        "INDEX_NOT_READY",
        "test.inkwell",
    )
    assert remote.metadata == {"state": "LOADING_MODEL"} and remote.retry_after_s == 2.5
    assert len(error_infos(caught.value)) == 1

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(channel, "Fail", b"defect", token=token)
    info = single_error_info(caught.value)
    assert caught.value.code() == grpc.StatusCode.INTERNAL and info.reason == "INTERNAL_DEFECT"
    assert "KeyError" not in (caught.value.details() or "")


async def test_health_and_reflection_stay_open(stack: Any) -> None:
    _auth, server, channel = stack
    health = health_pb2_grpc.HealthStub(channel)
    live = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert live.status == health_pb2.HealthCheckResponse.SERVING
    ready = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5)
    assert ready.status == health_pb2.HealthCheckResponse.NOT_SERVING
    await server.set_ready(True)
    ready = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5)
    assert ready.status == health_pb2.HealthCheckResponse.SERVING

    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    names = [s.name async for r in responses for s in r.list_services_response.service]
    assert SERVICE in names and "grpc.health.v1.Health" in names


async def test_graceful_stop_marks_everything_not_serving(stack: Any) -> None:
    _, server, channel = stack
    assert isinstance(server, ServiceServer)
    await server.set_ready(True)
    await server.health.enter_graceful_shutdown()
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", SERVICE):
        status = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_the_callers_remaining_deadline_caps_outbound_calls(stack: Any, tokens: TokenFactory) -> None:
    auth, _server, channel = stack
    token = await internal_token(auth, tokens)
    md = [("authorization", f"Bearer {token}")]
    short = float(await channel.unary_unary(f"/{SERVICE}/Budget")(b"", timeout=1.5, metadata=md))
    assert 0.5 < short <= 1.5, short
    long = float(await channel.unary_unary(f"/{SERVICE}/Budget")(b"", timeout=300, metadata=md))
    assert long == 30.0  # capped by the call's own limit
    unbounded = float(await channel.unary_unary(f"/{SERVICE}/Budget")(b"", metadata=md))
    assert unbounded == 30.0


def test_outbound_metadata_and_deadlines() -> None:
    ctx = context.start("rid-1", None)
    assert ("x-request-id", "rid-1") in call_metadata("tok")
    assert ("authorization", "Bearer tok") in call_metadata("tok")
    assert any(k == "traceparent" and ctx.trace_id in v for k, v in call_metadata())
    assert deadline(2.0, None) == 2.0 and deadline(2.0, 0.5) == 0.5 and deadline(2.0, 1e12) == 2.0
    assert deadline(2.0, -1) == 0.001
    assert context.sanitize_request_id("bad id\n") != "bad id\n"
