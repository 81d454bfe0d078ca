"""The local development issuer: Clerk-shaped session tokens signed by a key in the data dir.

Its tokens go through exactly the same verification as Clerk's; only the pinned issuer and key
differ. It exists so nobody needs an "unverified" mode, and it is refused in production.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.auth.key_sources import StaticKeySource
from services.auth.keyfiles import load_or_create_private_key
from services.auth.verifier import TrustedIssuer

DEV_ISSUER = "https://dev.inkwell.localhost"
# Its subjects live in their own namespace: `inkwell token --user alice` acts as user `dev:alice`,
# so no development token can ever act as a Clerk user, whatever `sub` it carries.
DEV_NAMESPACE = "dev"
KEY_FILE = Path("auth") / "dev-issuer-rsa.pem"


class DevIssuer:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / KEY_FILE
        self._private = load_or_create_private_key(
            self.path, lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )
        public_der = self._private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = "ins_dev_" + hashlib.sha256(public_der).hexdigest()[:20]
        self.public_pem = self._private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def trusted_issuer(self) -> TrustedIssuer:
        return TrustedIssuer(
            DEV_ISSUER,
            StaticKeySource("dev_issuer", self.public_pem, kid=self.kid),
            development=True,
            namespace=DEV_NAMESPACE,
        )

    def mint(
        self,
        user_id: str,
        *,
        ttl_s: int = 3600,
        session_id: str | None = None,
        azp: str | None = None,
        org_id: str | None = None,
        **extra: Any,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": DEV_ISSUER,
            "sub": user_id,
            "sid": session_id or f"sess_dev_{secrets.token_hex(8)}",
            "iat": now,
            "nbf": now - 5,
            "exp": now + ttl_s,
            "jti": secrets.token_hex(10),
            "v": 2,
            "fva": [0, -1],
        }
        if azp:
            claims["azp"] = azp
        if org_id:
            claims["o"] = {"id": org_id, "rol": "admin", "slg": org_id}
        claims.update(extra)
        return jwt.encode(claims, self._private, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"})
