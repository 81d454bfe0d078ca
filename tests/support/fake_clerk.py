"""A fake Clerk on loopback speaking Clerk's real wire protocol for keys.

Frontend API: GET /.well-known/jwks.json (public). Backend API: GET /v1/jwks with
`Authorization: Bearer <secret key>` (401 otherwise). It counts every request, can be taken down
(503) or made to hang, and can rotate its signing key. The same class plays an attacker's server.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa


def b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey

    @classmethod
    def generate(cls, kid: str | None = None) -> SigningKey:
        return cls(
            kid or f"ins_{secrets.token_hex(12)}", rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )

    def jwk(self) -> dict[str, Any]:
        numbers = self.private.public_key().public_numbers()
        return {
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "alg": "RS256",
            "n": b64url_uint(numbers.n),
            "e": b64url_uint(numbers.e),
        }

    def public_pem(self) -> str:
        from cryptography.hazmat.primitives import serialization

        return (
            self.private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )


@dataclass
class TokenFactory:
    """Mints Clerk v2 session tokens; every claim and header can be overridden or removed."""

    key: SigningKey
    issuer: str
    azp: str | None = "http://localhost:3000"

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "azp": self.azp,
            "exp": now + 60,
            "fva": [0, -1],
            "iat": now,
            "iss": self.issuer,
            "nbf": now - 5,
            "sid": f"sess_{secrets.token_hex(6)}",
            "sub": "user_alice",
            "v": 2,
            "jti": secrets.token_hex(8),
        }
        if self.azp is None:
            del claims["azp"]
        for name, value in overrides.items():
            if value is REMOVE:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def mint(self, headers: dict[str, Any] | None = None, key: SigningKey | None = None, **overrides: Any) -> str:
        signer = key or self.key
        header = {"kid": signer.kid, "typ": "JWT"}
        header.update(headers or {})
        header = {"alg": "RS256", **{k: v for k, v in header.items() if v is not REMOVE}}
        return sign_raw(header, self.claims(**overrides), signer)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_raw(header: dict[str, Any], claims: dict[str, Any], key: SigningKey) -> str:
    """RS256-sign any header and claims, including ones a JWT library would refuse to write."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = key.private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


REMOVE = object()


@dataclass
class FakeClerk:
    frontend_keys: list[SigningKey]
    backend_keys: list[SigningKey] | None = None
    secret_key: str = "sk_test_fakesecret"
    mode: str = "ok"  # ok | down | hang
    hits: Counter[str] = field(default_factory=Counter)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fetches(self, path: str = "/.well-known/jwks.json") -> int:
        return self.hits[path]

    def start(self) -> FakeClerk:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                fake.hits[path] += 1
                if fake.mode == "hang":
                    time.sleep(10)
                if fake.mode == "down":
                    return self._send(503, {"errors": [{"code": "service_unavailable"}]})
                if path == "/.well-known/jwks.json":
                    return self._send(200, {"keys": [k.jwk() for k in fake.frontend_keys]})
                if path == "/v1/jwks":
                    if self.headers.get("Authorization") != f"Bearer {fake.secret_key}":
                        return self._send(401, {"errors": [{"code": "authentication_invalid"}]})
                    keys = fake.backend_keys if fake.backend_keys is not None else fake.frontend_keys
                    return self._send(200, {"keys": [k.jwk() for k in keys]})
                return self._send(404, {"errors": [{"code": "resource_not_found"}]})

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
