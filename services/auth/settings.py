"""Auth service settings. Trust is pinned here, never derived from a token."""

from __future__ import annotations

from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import field_validator

from libs.runtime.settings import BaseServiceSettings, parse_origins, setting
from services.auth.clerk_keys import PublishableKey, parse_publishable_key, secret_key_environment

DEFAULT_AUDIENCES = "inkwell.llm,inkwell.index"


class AuthSettings(BaseServiceSettings):
    host: str = setting("127.0.0.1", "INKWELL_AUTH_HOST", "the address to listen on, e.g. 0.0.0.0")
    port: int = setting(50051, "INKWELL_AUTH_PORT", "a TCP port between 0 and 65535", ge=0, le=65535)
    metrics_port: int | None = setting(
        None,
        "INKWELL_AUTH_METRICS_PORT",
        "a TCP port for Prometheus /metrics (unset: no metrics listener)",
        ge=1,
        le=65535,
    )

    publishable_key: str = setting(
        "",
        "CLERK_PUBLISHABLE_KEY",
        "copy the Publishable key from Clerk Dashboard > API keys (pk_test_... or pk_live_...)",
    )
    secret_key: str = setting("", "CLERK_SECRET_KEY", "copy the Secret key of the same Clerk instance (sk_...)")
    jwt_key: str = setting(
        "", "CLERK_JWT_KEY", "paste the PEM public key from Clerk Dashboard > API keys > JWT public key"
    )
    issuer_override: str = setting(
        "", "CLERK_ISSUER", "the Frontend API URL of your Clerk instance, e.g. https://clerk.example.com"
    )
    frontend_api_url: str = setting(
        "", "CLERK_FRONTEND_API_URL", "base URL serving /.well-known/jwks.json (defaults to the issuer)"
    )
    backend_api_url: str = setting("https://api.clerk.com", "CLERK_API_URL", "base URL of Clerk's Backend API")
    authorized_parties_raw: str = setting(
        "", "CLERK_AUTHORIZED_PARTIES", "comma-separated frontend origins, e.g. https://app.example.com"
    )
    clock_skew_s: float = setting(5.0, "CLERK_CLOCK_SKEW_S", "seconds between 0 and 60", ge=0, le=60)
    jwks_ttl_s: float = setting(300.0, "CLERK_JWKS_TTL_S", "seconds between 300 and 600", ge=300, le=600)
    jwks_cooldown_s: float = setting(30.0, "CLERK_JWKS_COOLDOWN_S", "seconds between 1 and 300", ge=1, le=300)
    jwks_timeout_s: float = setting(
        1.5,
        "CLERK_JWKS_TIMEOUT_S",
        "seconds between 0.1 and 30, shorter than the gateway's INKWELL_AUTH_TIMEOUT_S",
        gt=0,
        le=30,
    )
    max_token_bytes: int = setting(8192, "INKWELL_MAX_TOKEN_BYTES", "bytes between 1024 and 16384", ge=1024, le=16384)
    service_key: str = setting(
        "",
        "INKWELL_SERVICE_KEY",
        "a long random string shared with the gateway (default: created once in INKWELL_DATA_DIR/auth/service.key)",
    )
    internal_audiences_raw: str = setting(
        DEFAULT_AUDIENCES, "INKWELL_INTERNAL_AUDIENCES", "comma-separated service audiences, e.g. inkwell.llm"
    )

    @field_validator("publishable_key")
    @classmethod
    def _check_publishable(cls, value: str) -> str:
        if value:
            parse_publishable_key(value.strip())
        return value.strip()

    @field_validator("secret_key")
    @classmethod
    def _check_secret(cls, value: str) -> str:
        if value:
            secret_key_environment(value.strip())
        return value.strip()

    @field_validator("jwt_key")
    @classmethod
    def _check_pem(cls, value: str) -> str:
        value = value.strip().replace("\\n", "\n")
        if value:
            try:
                key = load_pem_public_key(value.encode())
            except ValueError:
                raise ValueError("is not a PEM public key (-----BEGIN PUBLIC KEY-----)") from None
            if not isinstance(key, rsa.RSAPublicKey):
                raise ValueError("must be an RSA public key (Clerk signs with RS256)")
        return value

    @field_validator("issuer_override", "frontend_api_url", "backend_api_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @field_validator("authorized_parties_raw")
    @classmethod
    def _check_parties(cls, value: str) -> str:
        parse_origins(value)
        return value

    @property
    def publishable(self) -> PublishableKey | None:
        return parse_publishable_key(self.publishable_key) if self.publishable_key else None

    @property
    def clerk_issuer(self) -> str:
        """The pinned Clerk issuer, or "" when Clerk is not configured."""
        if self.issuer_override:
            return self.issuer_override
        pk = self.publishable
        return pk.issuer if pk else ""

    @property
    def clerk_frontend_api_url(self) -> str:
        if self.frontend_api_url:
            return self.frontend_api_url
        pk = self.publishable
        return pk.frontend_api_url if pk else self.clerk_issuer

    @property
    def authorized_parties(self) -> tuple[str, ...]:
        return parse_origins(self.authorized_parties_raw)

    @property
    def internal_audiences(self) -> tuple[str, ...]:
        return tuple(a.strip() for a in self.internal_audiences_raw.split(",") if a.strip())

    def cross_check(self) -> list[str]:
        """Problems that involve more than one setting."""
        problems = super().cross_check()
        if self.is_production and not self.clerk_issuer:
            problems.append(
                "CLERK_PUBLISHABLE_KEY: production needs a Clerk instance to trust. "
                "Fix: set CLERK_PUBLISHABLE_KEY (or CLERK_ISSUER) from the Clerk Dashboard"
            )
        if self.clerk_issuer.startswith("http://") and self.is_production:
            problems.append("CLERK_ISSUER: production issuers use https. Fix: use the https Frontend API URL")
        if not self.internal_audiences:
            problems.append("INKWELL_INTERNAL_AUDIENCES: is empty. Fix: list the internal services, e.g. inkwell.llm")
        return problems
