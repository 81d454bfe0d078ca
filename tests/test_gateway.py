"""The gateway over real HTTP, with the real auth service behind it on loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from gateway.app import create_app
from gateway.session_cache import Denial, SessionCache, VerifiedSession, token_key
from gateway.settings import GatewaySettings
from libs.runtime import logs
from libs.runtime.settings import ConfigError, load
from libs.runtime.signatures import CollapseFilter
from services.auth.dev_issuer import DevIssuer
from services.auth.main import start_auth
from services.auth.settings import AuthSettings
from tests.conftest import FRONTEND_ORIGIN, clerk_env
from tests.support.fake_clerk import REMOVE, FakeClerk, TokenFactory
from tests.support.loops import LoopThread, UvicornThread
from tests.support.processes import free_port

OPS_USERS = "user_ops,dev:alice"  # dev:alice is listed, yet refused in production: no dev token verifies there
OPS_ORG_ROLES = "org_1:org:admin"
LOOP_BLOCK_WARN_MS = "8"  # see README "Event-loop blocking check"


class Stack:
    def __init__(self, clerk: FakeClerk, data_dir: Path, auth_address: str | None = None, **env: Any) -> None:
        mode = env.pop("INKWELL_ENV", "production")  # auth and gateway alike
        self.data_dir = data_dir
        self.loops = LoopThread("auth")
        self.auth = self.loops.run(start_auth(load(AuthSettings, **clerk_env(clerk, data_dir, INKWELL_ENV=mode))))
        self.verify_calls = 0
        verifier = self.auth.components.verifier
        original = verifier.verify

        async def counting(token: str | None) -> Any:
            self.verify_calls += 1
            await asyncio.sleep(0.05)  # widen the window for concurrent first requests
            return await original(token)

        verifier.verify = counting  # type: ignore[method-assign]
        settings = load(
            GatewaySettings,
            INKWELL_AUTH_ADDR=auth_address or f"127.0.0.1:{self.auth.port}",
            CLERK_AUTHORIZED_PARTIES=FRONTEND_ORIGIN,
            INKWELL_ENV=mode,
            INKWELL_DATA_DIR=str(data_dir),
            # Nothing listens on these: the LLM and index are down in these tests.
            INKWELL_LLM_ADDR=f"127.0.0.1:{free_port()}",
            INKWELL_INDEX_ADDR=f"127.0.0.1:{free_port()}",
            INKWELL_OPS_USERS=OPS_USERS,
            INKWELL_OPS_ORG_ROLES=OPS_ORG_ROLES,
            **{"INKWELL_LOOP_BLOCK_WARN_MS": LOOP_BLOCK_WARN_MS, **env},
        )
        self.app = create_app(settings)
        self.http = UvicornThread(self.app)
        self.client = httpx.Client(base_url=self.http.url, timeout=10)

    @property
    def state(self) -> Any:
        return self.app.state.inkwell

    def close(self) -> None:
        self.client.close()
        self.http.stop()
        self.loops.run(self.auth.stop())
        self.loops.stop()
        blocked = self.state.loop_watch.blocked
        assert not blocked, f"a callback blocked the gateway's event loop: {blocked}"


@pytest.fixture
def stack(fake_clerk: FakeClerk, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(fake_clerk, tmp_path / "data")
    yield s
    s.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: httpx.Response, status: int, reason: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and body["detail"] == body["error"]["message"]
    error = body["error"]
    assert error["reason"] == reason and error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    return dict(error)


def test_me_returns_the_verified_principal_and_caches_it(stack: Stack, tokens: TokenFactory) -> None:
    token = tokens.mint(o={"id": "org_9", "rol": "org:admin", "slg": "acme"})
    first = stack.client.get("/api/auth/me", headers=bearer(token))
    assert first.status_code == 200, first.text
    user = first.json()["user"]
    assert user["user_id"] == "user_alice" and user["org_id"] == "org_9" and user["authorized_party"] == FRONTEND_ORIGIN
    for _ in range(5):
        assert stack.client.get("/api/auth/me", headers=bearer(token)).status_code == 200
    assert stack.verify_calls == 1
    assert stack.state.session_cache.hits >= 5


def test_session_cookie_is_accepted(stack: Stack, tokens: TokenFactory) -> None:
    response = stack.client.get("/api/auth/me", headers={"Cookie": f"__session={tokens.mint()}"})
    assert response.status_code == 200 and response.json()["user"]["user_id"] == "user_alice"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer null"},
        {"Authorization": "Bearer undefined"},
        {"Authorization": "Bearer"},
        {"Cookie": "__session=null"},
    ],
)
def test_missing_token_before_session_is_ready(stack: Stack, headers: dict[str, str]) -> None:
    response = stack.client.get("/api/auth/me", headers=headers)
    assert_error(response, 401, "TOKEN_MISSING")
    assert response.headers["www-authenticate"] == 'Bearer realm="inkwell"'
    assert stack.verify_calls == 0


def test_refusals_carry_reason_and_www_authenticate(stack: Stack, tokens: TokenFactory) -> None:
    now = int(time.time())
    cases = {
        "TOKEN_EXPIRED": tokens.mint(exp=now - 100, iat=now - 160, nbf=now - 165),
        "CLAIM_MISSING": tokens.mint(sid=REMOVE),
        "AUTHORIZED_PARTY_NOT_ALLOWED": tokens.mint(azp="https://evil.example"),
        "TOKEN_MALFORMED": "not-a-jwt",
        "TOKEN_TOO_LARGE": tokens.mint(pad="x" * 9000),
    }
    for reason, token in cases.items():
        response = stack.client.get("/api/auth/me", headers=bearer(token))
        assert_error(response, 401, reason)
        assert f'error_description="{reason}"' in response.headers["www-authenticate"]


def test_inbound_identity_headers_are_ignored(stack: Stack, tokens: TokenFactory) -> None:
    spoof = {"x-user-id": "user_mallory", "x-clerk-user-id": "user_mallory", "x-forwarded-user": "user_mallory"}
    assert_error(stack.client.get("/api/auth/me", headers=spoof), 401, "TOKEN_MISSING")
    response = stack.client.get("/api/auth/me", headers={**spoof, **bearer(tokens.mint())})
    assert response.json()["user"]["user_id"] == "user_alice"


def test_cors_on_success_and_on_errors(stack: Stack, tokens: TokenFactory) -> None:
    allowed = {"Origin": FRONTEND_ORIGIN}
    ok = stack.client.get("/api/auth/me", headers={**allowed, **bearer(tokens.mint())})
    assert ok.headers["access-control-allow-origin"] == FRONTEND_ORIGIN
    denied = stack.client.get("/api/auth/me", headers=allowed)
    assert denied.status_code == 401 and denied.headers["access-control-allow-origin"] == FRONTEND_ORIGIN
    missing = stack.client.get("/api/nope", headers=allowed)
    assert_error(missing, 404, "NOT_FOUND")
    assert missing.headers["access-control-allow-origin"] == FRONTEND_ORIGIN
    evil = stack.client.get("/api/auth/me", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in evil.headers
    preflight = stack.client.options(
        "/api/auth/me",
        headers={**allowed, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"},
    )
    assert preflight.status_code == 200


def test_concurrent_first_requests_share_one_verification(stack: Stack, tokens: TokenFactory) -> None:
    token = tokens.mint()

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=stack.http.url, timeout=10) as client:
            responses = await asyncio.gather(*(client.get("/api/auth/me", headers=bearer(token)) for _ in range(30)))
        return [r.status_code for r in responses]

    assert set(asyncio.run(burst())) == {200}
    assert stack.verify_calls == 1


def test_repeated_bad_token_is_verified_once_per_window(stack: Stack) -> None:
    for _ in range(10):
        assert stack.client.get("/api/auth/me", headers=bearer("a.b.c")).status_code == 401
    assert stack.verify_calls == 1


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The process's real log pipeline (JSON formatter, scrubbing, collapse) into a buffer."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()
    logs.configure("gateway", "INFO", stream=buffer)
    root.handlers.extend(h for h in saved[0] if h not in root.handlers)  # pytest's and the reason check
    try:
        yield buffer
    finally:
        logs.shutdown()
        root.handlers[:], level = saved
        root.setLevel(level)


def json_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_identical_failures_collapse_into_one_line(stack: Stack, json_log: io.StringIO) -> None:
    for _ in range(25):
        stack.client.get("/api/auth/me", headers={"Authorization": "Bearer null"})
    lines = [r for r in json_lines(json_log) if r["logger"] == "inkwell.gateway.auth"]
    assert len(lines) == 1
    line = lines[0]
    assert (line["reason"], line["route"], line["client"]) == ("TOKEN_MISSING", "/api/auth/me", "127.0.0.0/24")
    logs.shutdown()
    repeated = [r for r in json_lines(json_log) if r.get("repeated")]
    assert len(repeated) == 1 and repeated[0]["repeated"] == 24
    assert repeated[0]["event"] == "authentication failed (repeated)" and repeated[0]["reason"] == "TOKEN_MISSING"


def test_attacker_strings_in_claims_reach_no_log_verbatim(
    stack: Stack, tokens: TokenFactory, json_log: io.StringIO
) -> None:
    """An attack run with e-mail addresses in every token-derived string: no `@` in any log line,
    and long values are cut."""
    mail = "victim.person@example.com"
    attacks = [
        tokens.mint(iss=f"https://{mail}/" + "x" * 500),
        tokens.mint(azp=f"https://{mail}"),
        tokens.mint(headers={"kid": mail}),
        tokens.mint(headers={"kid": "ins_" + "k" * 120}),
        tokens.mint(sub=mail, sid=mail),
        tokens.mint(headers={"alg": f"HS256{mail}"}),
    ]
    for token in attacks:
        response = stack.client.get(
            "/api/auth/me", headers={**bearer(token), "User-Agent": mail, "Origin": f"https://{mail}"}
        )
        assert response.status_code in (200, 401, 403), response.text
    logs.shutdown()
    text = json_log.getvalue()
    assert text.count("\n") >= 3, text
    assert "@" not in text, [line for line in text.splitlines() if "@" in line]
    assert all(
        len(str(v)) <= logs.MAX_FIELD_CHARS + 32
        for r in json_lines(json_log)
        for k, v in r.items()
        if k not in ("event", "exc_info")
    )


def test_oversized_token_and_headers_are_refused_before_auth(stack: Stack) -> None:
    huge = "A" * (5 * 1024 * 1024)
    response = stack.client.get("/api/auth/me", headers=bearer(huge))
    assert_error(response, 401, "TOKEN_TOO_LARGE")
    assert response.headers["www-authenticate"].startswith("Bearer")
    cookie = stack.client.get("/api/auth/me", headers={"Cookie": "__session=" + "B" * 20_000})
    assert_error(cookie, 401, "TOKEN_TOO_LARGE")
    many = {f"x-filler-{i}": "v" * 1000 for i in range(40)}
    assert_error(stack.client.get("/api/auth/me", headers=many), 431, "HEADERS_TOO_LARGE")
    assert stack.verify_calls == 0, "an oversized request reached the auth service"
    assert stack.client.get("/healthz").status_code == 200


def test_auth_deadline_must_outlast_the_jwks_fetch() -> None:
    with pytest.raises(ConfigError) as caught:
        load(GatewaySettings, INKWELL_AUTH_TIMEOUT_S=2, CLERK_JWKS_TIMEOUT_S=5)
    assert "INKWELL_AUTH_TIMEOUT_S" in str(caught.value) and "CLERK_JWKS_TIMEOUT_S" in str(caught.value)
    assert "Fix:" in str(caught.value)
    # Defaults (auth in production, the default, needs an issuer to start).
    assert (
        load(GatewaySettings).auth_timeout_s
        > load(AuthSettings, CLERK_ISSUER="https://clerk.example.com").jwks_timeout_s
    )


def test_tokens_are_never_logged(stack: Stack, tokens: TokenFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = tokens.mint(azp="https://evil.example")
    stack.client.get("/api/auth/me", headers=bearer(token))
    stack.client.get("/api/auth/me", headers=bearer(tokens.mint()))
    text = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert token not in text and token.split(".")[1] not in text


def test_readiness_names_the_backends_not_ready(stack: Stack) -> None:
    assert stack.client.get("/healthz").json() == {"status": "ok"}
    for _ in range(100):  # the auth service is ready once it has fetched the Clerk keys
        backends = stack.client.get("/readyz").json()["backends"]
        if backends["auth"] == "SERVING":
            break
        assert backends["auth"] == "NOT_SERVING"
        time.sleep(0.05)
    ready = stack.client.get("/readyz")  # no index or llm service runs in this test
    assert ready.status_code == 503
    assert ready.json()["backends"] == {"auth": "SERVING", "index": "UNREACHABLE", "llm": "UNREACHABLE"}
    assert ready.json()["error"]["reason"] == "BACKENDS_NOT_READY"
    assert ready.json()["error"]["message"] == "not ready: index, llm"
    assert stack.client.get("/docs").status_code == 200
    assert "/api/auth/me" in stack.client.get("/openapi.json").json()["paths"]


def test_auth_service_down(fake_clerk: FakeClerk, tmp_path: Path, tokens: TokenFactory) -> None:
    stack = Stack(fake_clerk, tmp_path / "data", auth_address=f"127.0.0.1:{free_port()}")
    try:
        ready = stack.client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["backends"]["auth"] == "UNREACHABLE"
        assert "auth" in ready.json()["error"]["message"]
        started = time.monotonic()
        response = stack.client.get("/api/auth/me", headers=bearer(tokens.mint()))
        assert_error(response, 503, "AUTH_UNAVAILABLE")
        assert time.monotonic() - started < 5 and response.headers["retry-after"]
    finally:
        stack.close()


def test_session_cache_expiry_and_bounds() -> None:
    cache = SessionCache(max_entries=2)
    now = time.time()
    cache.put(b"a", VerifiedSession({}, "t", now + 30))
    cache.put(b"b", Denial("TOKEN_EXPIRED", "m", {}, now + 5))
    cache.put(b"old", VerifiedSession({}, "t", now - 1))
    assert cache.get(b"old") is None and cache.get(b"a") is not None
    cache.put(b"c", VerifiedSession({}, "t", now + 30))
    assert len(cache) == 2 and cache.get(b"a") is None
    assert SessionCache.session_valid_until(now + 60, now + 30) == now + 25


def test_collapse_filter_summarises_every_window() -> None:
    collapse = CollapseFilter(window_s=60)

    def record(reason: str, at: float) -> logging.LogRecord:
        r = logging.makeLogRecord({"name": "t", "msg": "failed", "levelno": logging.WARNING, "reason": reason})
        r.created = at
        return r

    a, b = "TOKEN_EXPIRED", "TOKEN_MISSING"
    assert collapse.filter(record(a, 1000)) and not collapse.filter(record(a, 1001))
    assert collapse.filter(record(b, 1002))
    late = record(a, 1061)
    assert collapse.filter(late) and late.repeated == 1  # the next line after the window carries it
    assert not collapse.filter(record(a, 1062)) and not collapse.filter(record(a, 1063))
    assert collapse.summaries(now=1070) == []  # window still open
    (summary,) = collapse.summaries(force=True, now=1070)
    assert (summary.getMessage(), summary.repeated, summary.reason) == ("failed (repeated)", 2, a)
    assert collapse.summaries(force=True, now=1070) == []  # never reported twice


def ops_refused(stack: Stack, token: str | None) -> dict[str, Any]:
    headers = bearer(token) if token is not None else {}
    return assert_error(stack.client.get("/ops", headers=headers), 403, "OPS_FORBIDDEN")


@pytest.mark.parametrize(
    "claims",
    [
        {"o": {"id": "org_mine", "rol": "admin", "slg": "mine"}},  # the admin of a foreign org (v2 shape)
        {"o": {"id": "org_mine", "rol": "org:admin", "slg": "mine"}},
        {"org_id": "org_mine", "org_role": "org:admin"},  # the same, v1 claims
        {"o": {"id": "org_1", "rol": "not_admin", "slg": "acme"}},
        {"o": {"id": "org_1", "rol": "org:not_admin", "slg": "acme"}},
        {"o": {"id": "org_1", "rol": "org:billing_admin_viewer", "slg": "acme"}},
        {"o": {"id": "org_1", "rol": "org:admin_viewer", "slg": "acme"}},
        {"o": {"rol": "admin"}},  # a role without an organization
        {"sub": "user_not_listed"},
        {"sub": "user_ops_2"},  # a prefix of nobody, and nobody's prefix
    ],
    ids=lambda c: str(c),
)
def test_ops_refuses_everyone_not_listed(stack: Stack, tokens: TokenFactory, claims: dict[str, Any]) -> None:
    ops_refused(stack, tokens.mint(**claims))


def test_ops_refuses_no_token_and_refused_tokens_with_403(stack: Stack, tokens: TokenFactory) -> None:
    ops_refused(stack, None)
    expired = ops_refused(stack, tokens.mint(sub="user_ops", exp=int(time.time()) - 600))
    assert "TOKEN_EXPIRED" in expired["message"]


def test_ops_admits_listed_users_and_exact_org_roles(stack: Stack, tokens: TokenFactory) -> None:
    for token in (
        tokens.mint(sub="user_ops"),
        tokens.mint(o={"id": "org_1", "rol": "admin", "slg": "acme"}),  # v2: rol without the org: prefix
        tokens.mint(o={"id": "org_1", "rol": "org:admin", "slg": "acme"}),
    ):
        page = stack.client.get("/ops", headers=bearer(token), timeout=60)
        assert page.status_code == 200, page.text
        assert "Inkwell operations" in page.text
        assert "The index service did not answer." in page.text  # no index runs in this test


def test_dev_tokens_are_refused_in_production(stack: Stack) -> None:
    dev = DevIssuer(stack.data_dir / "stolen-volume").mint("alice", azp=FRONTEND_ORIGIN, org_id="org_1")
    error = assert_error(stack.client.get("/api/auth/me", headers=bearer(dev)), 401, "ISSUER_NOT_ALLOWED")
    assert error["message"]
    refused = ops_refused(stack, dev)  # dev:alice is in INKWELL_OPS_USERS, and org_1 admins are operators
    assert "ISSUER_NOT_ALLOWED" in refused["message"]


@pytest.fixture
def dev_stack(fake_clerk: FakeClerk, tmp_path: Path) -> Iterator[Stack]:
    """Development: Clerk AND the local dev issuer are trusted at once."""
    s = Stack(fake_clerk, tmp_path / "data", INKWELL_ENV="development")
    yield s
    s.close()


def test_a_dev_token_never_acts_as_a_clerk_user(dev_stack: Stack, tokens: TokenFactory) -> None:
    clerk_token = tokens.mint(sub="user_2abc")
    dev_token = DevIssuer(dev_stack.data_dir).mint("user_2abc", azp=FRONTEND_ORIGIN)  # claims the Clerk user's id
    clerk, dev = bearer(clerk_token), bearer(dev_token)
    assert dev_stack.client.get("/api/auth/me", headers=clerk).json()["user"]["user_id"] == "user_2abc"
    me = dev_stack.client.get("/api/auth/me", headers=dev).json()["user"]
    assert me["user_id"] == "dev:user_2abc" and me["development"] is True

    today = dt.datetime.now(dt.UTC).date().isoformat()
    generated = dev_stack.client.post("/api/today-workflow/generate", params={"date": today}, headers=clerk)
    assert generated.status_code == 200, generated.text
    assert dev_stack.client.get("/api/today-workflow", params={"date": today}, headers=clerk).status_code == 200
    plan = dev_stack.client.get("/api/today-workflow", params={"date": today}, headers=dev)
    assert_error(plan, 404, "PLAN_NOT_FOUND")
    assert_error(dev_stack.client.get("/api/subscription/status/user_2abc", headers=dev), 403, "USER_MISMATCH")
    assert dev_stack.client.get("/api/subscription/status/dev:user_2abc", headers=dev).status_code != 403

    # What the index and the LLM service see: the internal identity token's subject.
    subjects = []
    for token in (clerk_token, dev_token):
        entry = dev_stack.state.session_cache.get(token_key(token))
        assert isinstance(entry, VerifiedSession)
        subjects.append(jwt.decode(entry.internal_token, options={"verify_signature": False})["sub"])
    assert subjects == ["user_2abc", "dev:user_2abc"]


def test_a_clerk_subject_cannot_enter_the_dev_namespace(dev_stack: Stack, tokens: TokenFactory) -> None:
    response = dev_stack.client.get("/api/auth/me", headers=bearer(tokens.mint(sub="dev:alice")))
    assert_error(response, 401, "TOKEN_MALFORMED")


def test_ops_in_development_admits_listed_dev_users_and_loopback_only_when_asked(dev_stack: Stack) -> None:
    dev = DevIssuer(dev_stack.data_dir)
    ops_refused(dev_stack, None)  # from loopback, but INKWELL_OPS_LOOPBACK is off
    ops_refused(dev_stack, dev.mint("bob", azp=FRONTEND_ORIGIN))
    ops_refused(dev_stack, dev.mint("user_ops", azp=FRONTEND_ORIGIN))  # dev:user_ops is not the Clerk user_ops
    page = dev_stack.client.get("/ops", headers=bearer(dev.mint("alice", azp=FRONTEND_ORIGIN)), timeout=60)
    assert page.status_code == 200 and "Inkwell operations" in page.text
