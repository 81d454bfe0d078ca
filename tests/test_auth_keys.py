"""Key sources and the JWKS cache against a fake Clerk: floods, rotation, outages, PEM."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import grpc
import pytest

from inkwell.auth.v1 import auth_service_pb2 as pb
from tests.conftest import ISSUER, PUBLISHABLE_KEY, clerk_env
from tests.support.fake_clerk import FakeClerk, SigningKey, TokenFactory
from tests.support.grpc_errors import single_error_info


async def verify(harness: Any, token: str) -> str:
    """The user id, or the refusal reason."""
    try:
        response = await harness.stub.VerifySession(pb.VerifySessionRequest(token=token), timeout=10)
    except grpc.aio.AioRpcError as exc:
        return single_error_info(exc).reason
    return response.principal.user_id


async def wait_ready(harness: Any) -> None:
    for _ in range(200):
        if harness.running.components.ready:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("auth service never loaded its keys")


async def test_flood_of_random_kids_costs_one_fetch(
    start_auth_service: Any, fake_clerk: FakeClerk, tokens: TokenFactory, tmp_path: Any
) -> None:
    auth = await start_auth_service(**clerk_env(fake_clerk, tmp_path / "d"))
    await wait_ready(auth)
    before = fake_clerk.fetches()
    flood = [tokens.mint(headers={"kid": f"ins_{secrets.token_hex(8)}"}) for _ in range(1000)]
    reasons = await asyncio.gather(*(verify(auth, t) for t in flood))
    assert set(reasons) == {"KID_UNKNOWN"}
    assert fake_clerk.fetches() - before <= 1
    # Valid tokens keep verifying during the flood.
    assert await verify(auth, tokens.mint()) == "user_alice"


async def test_key_rotation_accepts_new_kid_after_one_refetch(
    start_auth_service: Any, fake_clerk: FakeClerk, tokens: TokenFactory, tmp_path: Any
) -> None:
    auth = await start_auth_service(**clerk_env(fake_clerk, tmp_path / "d"))
    assert await verify(auth, tokens.mint()) == "user_alice"
    new_key = SigningKey.generate("ins_2rotated")
    fake_clerk.frontend_keys = [new_key, fake_clerk.frontend_keys[0]]
    before = fake_clerk.fetches()
    rotated = TokenFactory(new_key, ISSUER, azp=tokens.azp)
    results = await asyncio.gather(*(verify(auth, rotated.mint()) for _ in range(20)))
    assert set(results) == {"user_alice"}
    assert fake_clerk.fetches() - before == 1


async def test_jwks_outage_serves_cached_keys_and_fails_fast_on_unknown_kid(
    start_auth_service: Any, fake_clerk: FakeClerk, tokens: TokenFactory, tmp_path: Any
) -> None:
    auth = await start_auth_service(**clerk_env(fake_clerk, tmp_path / "d"))
    await wait_ready(auth)
    fake_clerk.mode = "down"
    assert await verify(auth, tokens.mint()) == "user_alice"
    started = time.monotonic()
    unknown = tokens.mint(headers={"kid": "ins_2brandnew"})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await auth.stub.VerifySession(pb.VerifySessionRequest(token=unknown), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert single_error_info(caught.value).reason == "JWKS_UNAVAILABLE"
    assert time.monotonic() - started < 2
    # During the outage unknown kids refetch one at a time (concurrent ones share the fetch) and
    # still fails fast; known keys keep verifying from the cache.
    hits = fake_clerk.fetches()
    others = [tokens.mint(headers={"kid": f"ins_2other{n}"}) for n in range(10)]
    started = time.monotonic()
    results = await asyncio.gather(*(verify(auth, token) for token in others))
    assert set(results) == {"JWKS_UNAVAILABLE"} and time.monotonic() - started < 2
    assert fake_clerk.fetches() - hits < len(others)  # shared, one at a time: never one per token
    assert await verify(auth, tokens.mint()) == "user_alice"


async def test_unknown_kid_verifies_once_the_jwks_outage_ends(
    start_auth_service: Any, fake_clerk: FakeClerk, tokens: TokenFactory, tmp_path: Any
) -> None:
    """Keys rotated during an outage: the 30 s unknown-kid cooldown must not outlast the outage,
    and the refusal during the outage must not show the client the internal JWKS URL."""
    auth = await start_auth_service(**clerk_env(fake_clerk, tmp_path / "d"))
    await wait_ready(auth)
    fake_clerk.mode = "down"
    new_key = SigningKey.generate("ins_2rotatedduringoutage")
    rotated = TokenFactory(new_key, ISSUER, azp=tokens.azp).mint()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await auth.stub.VerifySession(pb.VerifySessionRequest(token=rotated), timeout=10)
    assert single_error_info(caught.value).reason == "JWKS_UNAVAILABLE"
    shown = (caught.value.details() or "") + repr(dict(single_error_info(caught.value).metadata))
    assert fake_clerk.url not in shown and "127.0.0.1" not in shown and "jwks.json" not in shown
    fake_clerk.frontend_keys = [new_key, fake_clerk.frontend_keys[0]]
    fake_clerk.mode = "ok"
    # No 5xx once the issuer answers again: the very first request after the outage verifies.
    assert await verify(auth, rotated) == "user_alice", "the unknown-kid cooldown outlasted the outage"


async def test_unreachable_jwks_at_startup_is_not_ready_and_says_why(
    start_auth_service: Any, fake_clerk: FakeClerk, tokens: TokenFactory, tmp_path: Any
) -> None:
    fake_clerk.mode = "down"
    auth = await start_auth_service(**clerk_env(fake_clerk, tmp_path / "d", CLERK_JWKS_TIMEOUT_S=1))
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(auth.channel)
    liveness = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert liveness.status == health_pb2.HealthCheckResponse.SERVING
    await asyncio.sleep(0.5)
    readiness = await health.Check(health_pb2.HealthCheckRequest(service="inkwell.auth.v1.AuthService"), timeout=5)
    assert readiness.status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert await verify(auth, tokens.mint()) == "JWKS_UNAVAILABLE"
    fake_clerk.mode = "ok"
    for _ in range(100):  # the background refresher retries and recovers on its own
        readiness = await health.Check(health_pb2.HealthCheckRequest(service="inkwell.auth.v1.AuthService"), timeout=5)
        if readiness.status == health_pb2.HealthCheckResponse.SERVING:
            break
        await asyncio.sleep(0.1)
    assert readiness.status == health_pb2.HealthCheckResponse.SERVING
    assert await verify(auth, tokens.mint()) == "user_alice"


async def test_backend_api_source_uses_the_secret_key(
    start_auth_service: Any, fake_clerk: FakeClerk, tokens: TokenFactory, tmp_path: Any
) -> None:
    env = clerk_env(
        fake_clerk, tmp_path / "d", CLERK_PUBLISHABLE_KEY=None, CLERK_FRONTEND_API_URL=None, CLERK_ISSUER=ISSUER
    )
    auth = await start_auth_service(**env)
    assert await verify(auth, tokens.mint()) == "user_alice"
    assert fake_clerk.fetches("/v1/jwks") >= 1 and fake_clerk.fetches() == 0


async def test_pem_key_needs_no_network(
    start_auth_service: Any, fake_clerk: FakeClerk, signing_key: SigningKey, tokens: TokenFactory, tmp_path: Any
) -> None:
    env = clerk_env(fake_clerk, tmp_path / "d", CLERK_SECRET_KEY=None, CLERK_JWT_KEY=signing_key.public_pem())
    auth = await start_auth_service(**env)
    assert await verify(auth, tokens.mint()) == "user_alice"
    assert await verify(auth, tokens.mint(key=SigningKey.generate())) == "SIGNATURE_INVALID"
    assert sum(fake_clerk.hits.values()) == 0


async def test_jwks_fetch_has_a_timeout(
    start_auth_service: Any, fake_clerk: FakeClerk, tokens: TokenFactory, tmp_path: Any
) -> None:
    fake_clerk.mode = "hang"
    auth = await start_auth_service(**clerk_env(fake_clerk, tmp_path / "d", CLERK_JWKS_TIMEOUT_S=0.5))
    started = time.monotonic()
    assert await verify(auth, tokens.mint()) == "JWKS_UNAVAILABLE"
    assert time.monotonic() - started < 3


async def test_self_check_detects_instance_mismatch(
    start_auth_service: Any,
    fake_clerk: FakeClerk,
    other_instance_key: SigningKey,
    tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_clerk.backend_keys = [other_instance_key]  # the secret key belongs to another instance
    auth = await start_auth_service(**clerk_env(fake_clerk, tmp_path / "d"))
    report = await _finished_check(auth)
    mismatch = [f for f in report.findings if f.code == "CLERK_INSTANCE_MISMATCH"]
    assert len(mismatch) == 1 and mismatch[0].severity == pb.FINDING_SEVERITY_ERROR
    assert "secret key and publishable key belong to different Clerk instances" in mismatch[0].message
    lines = [r for r in caplog.records if getattr(r, "reason", "") == "CLERK_INSTANCE_MISMATCH"]
    assert len(lines) == 1


async def test_self_check_detects_environment_mismatch(
    start_auth_service: Any, fake_clerk: FakeClerk, tmp_path: Any
) -> None:
    auth = await start_auth_service(**clerk_env(fake_clerk, tmp_path / "d", CLERK_SECRET_KEY="sk_live_abc"))
    report = await _finished_check(auth)
    codes = {f.code for f in report.findings}
    assert "CLERK_KEY_ENVIRONMENT_MISMATCH" in codes


async def test_self_check_passes_for_matching_keys(
    start_auth_service: Any, fake_clerk: FakeClerk, tmp_path: Any
) -> None:
    auth = await start_auth_service(**clerk_env(fake_clerk, tmp_path / "d"))
    report = await _finished_check(auth)
    assert [f.code for f in report.findings if f.severity == pb.FINDING_SEVERITY_ERROR] == []
    assert list(report.trusted_issuers) == [ISSUER] and list(report.key_sources) == [pb.KEY_SOURCE_FRONTEND_API]


async def _finished_check(auth: Any) -> Any:
    for _ in range(100):
        report = await auth.stub.CheckConfig(pb.CheckConfigRequest(), timeout=5)
        if report.state == pb.CHECK_STATE_DONE:
            return report
        await asyncio.sleep(0.05)
    raise AssertionError("self-check did not finish")


def test_publishable_key_round_trip() -> None:
    from services.auth.clerk_keys import parse_publishable_key

    assert parse_publishable_key(PUBLISHABLE_KEY).issuer == ISSUER
    assert parse_publishable_key("pk_test_ZXhhbXBsZS5hY2NvdW50cy5kZXYk").frontend_api_host == "example.accounts.dev"
    for bad in ["pk_prod_abc", "pk_test_!!!", "pk_test_" + "aG9zdA", "sk_test_abc"]:
        with pytest.raises(ValueError):
            parse_publishable_key(bad)
