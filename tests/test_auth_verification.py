"""Every way a session token can be wrong is refused with its own reason, never a 5xx, and
never by fetching keys from anywhere but the pinned instance."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import grpc
import jwt
import pytest

from inkwell.auth.v1 import auth_service_pb2 as pb
from libs.runtime.identity import InternalTokenVerifier
from libs.runtime.jwks import KeySetCache, parse_jwks
from services.auth.dev_issuer import DevIssuer
from tests.conftest import ISSUER, clerk_env
from tests.support.fake_clerk import REMOVE, FakeClerk, SigningKey, TokenFactory
from tests.support.grpc_errors import single_error_info


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def refusal(harness: Any, token: str) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.stub.VerifySession(pb.VerifySessionRequest(token=token), timeout=10)
    info = single_error_info(caught.value)
    assert info.domain == "auth.inkwell"
    return caught.value.code(), info.reason, dict(info.metadata)


@pytest.fixture
async def auth(start_auth_service: Any, fake_clerk: FakeClerk, tmp_path: Any) -> Any:
    return await start_auth_service(**clerk_env(fake_clerk, tmp_path / "data"))


@pytest.fixture
def attacker() -> Any:
    key = SigningKey.generate("ins_attacker")
    server = FakeClerk([key]).start()
    yield server, key
    server.stop()


async def test_valid_token_gives_principal_and_internal_identity(auth: Any, tokens: TokenFactory) -> None:
    token = tokens.mint(o={"id": "org_1", "rol": "admin", "slg": "acme"})
    response = await auth.stub.VerifySession(pb.VerifySessionRequest(token=token), timeout=10)
    p = response.principal
    assert (p.user_id, p.org_id, p.org_role, p.org_slug) == ("user_alice", "org_1", "admin", "acme")
    assert p.session_id.startswith("sess_") and p.issuer == ISSUER and not p.development
    clerk_exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert p.expires_at.seconds == clerk_exp
    now = time.time()
    exp = response.internal_token_expires_at.seconds
    assert exp <= now + 60 and exp <= clerk_exp

    keys = await auth.stub.GetInternalKeys(pb.GetInternalKeysRequest(), timeout=5)
    document = {"keys": [{"kid": k.key_id, "kty": k.key_type, "crv": k.curve, "x": k.x} for k in keys.keys]}

    async def fetch() -> Any:
        return document

    verifier = InternalTokenVerifier("inkwell.index", KeySetCache("t", fetch, allowed_kty=frozenset({"OKP"})))
    identity = await verifier.verify(response.internal_token)
    assert identity.user_id == "user_alice" and identity.session_id == p.session_id
    assert set(identity.audiences) == {"inkwell.llm", "inkwell.index"}


async def test_internal_token_never_outlives_session_token(auth: Any, tokens: TokenFactory) -> None:
    token = tokens.mint(exp=int(time.time()) + 8)
    response = await auth.stub.VerifySession(pb.VerifySessionRequest(token=token), timeout=10)
    assert response.internal_token_expires_at.seconds <= int(time.time()) + 8


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "HS256", "RS512", "ES256", "PS256"])
async def test_algorithm_not_allowed(auth: Any, tokens: TokenFactory, alg: str) -> None:
    token = f"{b64({'alg': alg, 'typ': 'JWT', 'kid': 'ins_2primary'})}.{b64(tokens.claims())}."
    assert (await refusal(auth, token))[1] == "ALGORITHM_NOT_ALLOWED"


async def test_hs256_signed_with_the_rsa_public_key(auth: Any, tokens: TokenFactory, signing_key: SigningKey) -> None:
    import hashlib
    import hmac

    header = b64({"alg": "HS256", "typ": "JWT", "kid": signing_key.kid})
    body = b64(tokens.claims())
    mac = hmac.new(signing_key.public_pem().encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    code, reason, _ = await refusal(auth, f"{header}.{body}.{b64(mac)}")
    assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "ALGORITHM_NOT_ALLOWED")


async def test_embedded_jwk_header_is_ignored(auth: Any, tokens: TokenFactory, attacker: Any) -> None:
    _server, key = attacker
    # The attacker embeds their own public key and signs with it, reusing the real kid...
    forged = tokens.mint(headers={"jwk": key.jwk(), "kid": "ins_2primary"}, key=key)
    assert (await refusal(auth, forged))[1] == "SIGNATURE_INVALID"
    # ... or their own kid.
    forged = tokens.mint(headers={"jwk": key.jwk()}, key=key)
    assert (await refusal(auth, forged))[1] == "KID_UNKNOWN"


@pytest.mark.parametrize("header", ["jku", "x5u"])
async def test_jku_and_x5u_are_never_followed(auth: Any, tokens: TokenFactory, attacker: Any, header: str) -> None:
    server, key = attacker
    forged = tokens.mint(headers={header: f"{server.url}/.well-known/jwks.json"}, key=key)
    assert (await refusal(auth, forged))[1] == "KID_UNKNOWN"
    assert sum(server.hits.values()) == 0


async def test_issuer_controlled_key_discovery_is_refused(auth: Any, tokens: TokenFactory, attacker: Any) -> None:
    """The upstream bypass: keys looked up from the token's own `iss`."""
    server, key = attacker
    forged = TokenFactory(key, server.url).mint()
    code, reason, metadata = await refusal(auth, forged)
    assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "ISSUER_NOT_ALLOWED")
    assert metadata["tokenIssuer"] == server.url and metadata["looksLikeDevelopment"] == "false"
    assert sum(server.hits.values()) == 0


@pytest.mark.parametrize("kid", ["../../dev/null", "' OR '1'='1", "$(reboot)", "ins_2primary\x00", "a" * 100])
async def test_kid_injection_strings(auth: Any, tokens: TokenFactory, kid: str) -> None:
    assert (await refusal(auth, tokens.mint(headers={"kid": kid})))[1] == "KID_UNKNOWN"


@pytest.mark.parametrize("kid", ["", None, 12, "k" * 200])
async def test_unusable_kid_is_malformed(auth: Any, tokens: TokenFactory, kid: Any) -> None:
    headers = {"kid": REMOVE} if kid is None else {"kid": kid}
    assert (await refusal(auth, tokens.mint(headers=headers)))[1] == "TOKEN_MALFORMED"


async def test_expired_token_reports_how_long_ago(auth: Any, tokens: TokenFactory) -> None:
    now = int(time.time())
    _code, reason, metadata = await refusal(auth, tokens.mint(exp=now - 600, iat=now - 660, nbf=now - 665))
    assert reason == "TOKEN_EXPIRED"
    assert 595 <= float(metadata["secondsSinceExpiry"]) <= 620


async def test_expiry_within_clock_skew_is_accepted(auth: Any, tokens: TokenFactory) -> None:
    now = int(time.time())
    response = await auth.stub.VerifySession(
        pb.VerifySessionRequest(token=tokens.mint(exp=now - 2, iat=now - 62, nbf=now - 67)), timeout=10
    )
    assert response.principal.user_id == "user_alice"


@pytest.mark.parametrize("claim", ["nbf", "iat"])
async def test_not_yet_valid(auth: Any, tokens: TokenFactory, claim: str) -> None:
    _code, reason, metadata = await refusal(auth, tokens.mint(**{claim: int(time.time()) + 120}))
    assert reason == "TOKEN_NOT_YET_VALID" and float(metadata["secondsUntilValid"]) > 100


@pytest.mark.parametrize("claim", ["exp", "sid", "sub", "iat", "nbf"])
async def test_missing_required_claim(auth: Any, tokens: TokenFactory, claim: str) -> None:
    _code, reason, metadata = await refusal(auth, tokens.mint(**{claim: REMOVE}))
    assert (reason, metadata["claim"]) == ("CLAIM_MISSING", claim)


async def test_jwt_template_token_without_sid(auth: Any, tokens: TokenFactory) -> None:
    template = tokens.mint(sid=REMOVE, v=REMOVE, azp=REMOVE, email="alice@example.com")
    _code, reason, metadata = await refusal(auth, template)
    assert (reason, metadata["claim"]) == ("CLAIM_MISSING", "sid")


@pytest.mark.parametrize(
    ("version", "reason"),
    [(1, "TOKEN_VERSION_UNSUPPORTED"), ("2", "TOKEN_VERSION_UNSUPPORTED"), (REMOVE, "CLAIM_MISSING")],
)
async def test_session_token_version(auth: Any, tokens: TokenFactory, version: Any, reason: str) -> None:
    assert (await refusal(auth, tokens.mint(v=version)))[1] == reason


@pytest.mark.parametrize("azp", [REMOVE, "https://evil.example", ""])
async def test_authorized_party(auth: Any, tokens: TokenFactory, azp: Any) -> None:
    assert (await refusal(auth, tokens.mint(azp=azp)))[1] == "AUTHORIZED_PARTY_NOT_ALLOWED"


async def test_pending_session(auth: Any, tokens: TokenFactory) -> None:
    assert (await refusal(auth, tokens.mint(sts="pending")))[1] == "SESSION_PENDING"


async def test_wrong_typ(auth: Any, tokens: TokenFactory) -> None:
    assert (await refusal(auth, tokens.mint(headers={"typ": "at+jwt"})))[1] == "TOKEN_MALFORMED"


async def test_tampered_payload(auth: Any, tokens: TokenFactory) -> None:
    header, _, signature = tokens.mint().split(".")
    forged = f"{header}.{b64(tokens.claims(sub='user_admin'))}.{signature}"
    assert (await refusal(auth, forged))[1] == "SIGNATURE_INVALID"


@pytest.mark.parametrize(
    "token",
    [
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.@@@.###",
        "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.sig",
        f"{b64(b'[1,2]')}.{b64(b'{}')}.x",
        "..",
        "Bearer abc.def.ghi",
    ],
)
async def test_malformed(auth: Any, token: str) -> None:
    assert (await refusal(auth, token))[1] == "TOKEN_MALFORMED"


@pytest.mark.parametrize("suffix", ["==", "=", "+", "/", " x"])
async def test_non_canonical_base64(auth: Any, tokens: TokenFactory, suffix: str) -> None:
    assert (await refusal(auth, tokens.mint() + suffix))[1] == "TOKEN_MALFORMED"


async def test_malformed_org_claim_is_ignored_not_fatal(auth: Any, tokens: TokenFactory) -> None:
    response = await auth.stub.VerifySession(pb.VerifySessionRequest(token=tokens.mint(o="x")), timeout=10)
    assert response.principal.org_id == ""


async def test_too_large(auth: Any, tokens: TokenFactory) -> None:
    _code, reason, metadata = await refusal(auth, tokens.mint(padding="x" * 9000))
    assert reason == "TOKEN_TOO_LARGE" and int(metadata["size"]) > 9000


@pytest.mark.parametrize("token", ["", "null", "undefined", "  "])
async def test_missing(auth: Any, token: str) -> None:
    assert (await refusal(auth, token))[1] == "TOKEN_MISSING"


async def test_token_from_another_instance(auth: Any, other_instance_key: SigningKey) -> None:
    other = TokenFactory(other_instance_key, ISSUER, azp="http://localhost:3000").mint()
    assert (await refusal(auth, other))[1] == "KID_UNKNOWN"


async def test_dev_token_sent_to_production_is_named(auth: Any, tmp_path: Any) -> None:
    dev_token = DevIssuer(tmp_path / "dev").mint("alice")
    _code, reason, metadata = await refusal(auth, dev_token)
    assert reason == "ISSUER_NOT_ALLOWED" and metadata["looksLikeDevelopment"] == "true"
    clerk_dev = TokenFactory(SigningKey.generate(), "https://happy-cat-12.clerk.accounts.dev").mint()
    assert (await refusal(auth, clerk_dev))[2]["looksLikeDevelopment"] == "true"


async def test_refusals_are_never_server_errors(auth: Any, tokens: TokenFactory) -> None:
    weird = [
        f"{b64({'alg': 'RS256', 'kid': 'ins_2primary'})}.{b64({'iss': ISSUER, 'exp': 'soon'})}.c2ln",
        f"{b64({'alg': 'RS256', 'kid': 'ins_2primary', 'crit': ['exp']})}.{b64(tokens.claims())}.c2ln",
        f"{b64({'alg': ['RS256']})}.{b64({})}.c2ln",
        f"{b64({'alg': 'RS256', 'kid': {'a': 1}})}.{b64({'iss': [ISSUER]})}.c2ln",
        tokens.mint(exp="tomorrow"),
        tokens.mint(sub=123),
        tokens.mint(sid=["a"]),
    ]
    for token in weird:
        code, reason, _ = await refusal(auth, token)
        assert code == grpc.StatusCode.UNAUTHENTICATED, (token, reason)


def test_parse_jwks_skips_unusable_keys(signing_key: SigningKey) -> None:
    good = signing_key.jwk()
    document = {
        "keys": [good, {**good, "kid": "enc", "use": "enc"}, {"kty": "RSA"}, {"kid": "x", "kty": "oct", "k": "AA"}]
    }
    assert set(parse_jwks(document, frozenset({"RSA"}))) == {signing_key.kid}
