"""Mint the internal identity token (Ed25519 JWT, <= 60 s, never past the session's expiry)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Sequence
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from inkwell.auth.v1 import auth_service_pb2
from libs.runtime.identity import INTERNAL_ALGORITHM, INTERNAL_ISSUER
from services.auth.keyfiles import load_or_create_private_key
from services.auth.verifier import VerifiedSession

KEY_FILE = Path("auth") / "internal-ed25519.pem"


class InternalSigner:
    """Signs identity tokens with a key shared by every auth replica (same data volume)."""

    def __init__(self, data_dir: Path, ttl_s: float = 60.0) -> None:
        self.ttl_s = min(ttl_s, 60.0)
        self._private: ed25519.Ed25519PrivateKey = load_or_create_private_key(
            data_dir / KEY_FILE, ed25519.Ed25519PrivateKey.generate
        )
        raw = self._private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.kid = "int_" + hashlib.sha256(raw).hexdigest()[:20]
        self._x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def mint(self, session: VerifiedSession, audiences: Sequence[str]) -> tuple[str, int]:
        now = int(time.time())
        exp = min(now + int(self.ttl_s), session.expires_at)
        claims = {
            "iss": INTERNAL_ISSUER,
            "sub": session.user_id,
            "sid": session.session_id,
            "aud": list(audiences),
            "iat": now,
            "exp": exp,
            "jti": secrets.token_hex(8),
        }
        if session.org_id:
            claims["org"] = session.org_id
        token = jwt.encode(claims, self._private, algorithm=INTERNAL_ALGORITHM, headers={"kid": self.kid})
        return token, exp

    def mint_for_service(self, user_id: str, org_id: str, audiences: Sequence[str], actor: str) -> tuple[str, int]:
        """An identity for `user_id` with no session behind it, on behalf of a trusted service."""
        now = int(time.time())
        exp = now + int(self.ttl_s)
        claims: dict[str, object] = {
            "iss": INTERNAL_ISSUER,
            "sub": user_id,
            "aud": list(audiences),
            "iat": now,
            "exp": exp,
            "jti": secrets.token_hex(8),
            "act": actor,
        }
        if org_id:
            claims["org"] = org_id
        token = jwt.encode(claims, self._private, algorithm=INTERNAL_ALGORITHM, headers={"kid": self.kid})
        return token, exp

    def public_keys(self) -> list[auth_service_pb2.InternalKey]:
        return [
            auth_service_pb2.InternalKey(
                key_id=self.kid, key_type="OKP", curve="Ed25519", x=self._x, algorithm=INTERNAL_ALGORITHM
            )
        ]
