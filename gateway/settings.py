"""Gateway settings: where the backends are, which origins may call, and per-route budgets."""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator

from gateway.ops_access import OpsAccess, parse_org_roles, parse_users
from libs.runtime.limits import MAX_MESSAGE_BYTES, PROTOBUF_OVERHEAD_PER_ITEM
from libs.runtime.settings import BaseServiceSettings, parse_origins, setting

# The most documents one index request may carry (the index service's limit too).
MAX_DOCUMENTS = 1000
# The largest body cap for which a valid request, re-encoded as protobuf, still fits the gRPC
# message limit set on every channel (libs/runtime/limits.py), with 1 MiB to spare.
MAX_BODY_CAP = MAX_MESSAGE_BYTES - MAX_DOCUMENTS * PROTOBUF_OVERHEAD_PER_ITEM - 1024 * 1024

AUTH_DEADLINE_MARGIN_S = 0.25  # time for the auth service to answer after its JWKS fetch gave up
DEV_ORIGINS = ("http://localhost:3000", "http://localhost:5173", "http://127.0.0.1:3000", "http://127.0.0.1:5173")


class GatewaySettings(BaseServiceSettings):
    host: str = setting("127.0.0.1", "INKWELL_GATEWAY_HOST", "the address to listen on, e.g. 0.0.0.0")
    port: int = setting(8000, "INKWELL_GATEWAY_PORT", "a TCP port between 1 and 65535", ge=0, le=65535)
    auth_address: str = setting("127.0.0.1:50051", "INKWELL_AUTH_ADDR", "host:port of the auth service")
    index_address: str = setting("127.0.0.1:50053", "INKWELL_INDEX_ADDR", "host:port of the index service")
    index_timeout_s: float = setting(
        5.0, "INKWELL_INDEX_TIMEOUT_S", "seconds a call to the index may take, 0.1 to 60", gt=0.1, le=60
    )
    llm_address: str = setting("127.0.0.1:50052", "INKWELL_LLM_ADDR", "host:port of the LLM service")
    plan_budget_s: float = setting(
        45.0,
        "INKWELL_PLAN_BUDGET_S",
        "seconds a whole plan generation may take (every LLM call included), above 0 and below 60 "
        "(the frontend gives /generate 60 s)",
        gt=0,
        lt=60,
    )
    service_key: str = setting(
        "",
        "INKWELL_SERVICE_KEY",
        "the auth service's INKWELL_SERVICE_KEY (default: read from INKWELL_DATA_DIR/auth/service.key)",
    )
    outbox_backoff_s: float = setting(
        1.0, "INKWELL_OUTBOX_BACKOFF_S", "first retry delay of the index outbox, 0.05 to 60 s", ge=0.05, le=60
    )
    outbox_backoff_max_s: float = setting(
        60.0, "INKWELL_OUTBOX_BACKOFF_MAX_S", "longest retry delay of the index outbox, 0.1 to 3600 s", ge=0.1, le=3600
    )
    database_url: str = setting(
        "", "DATABASE_URL", "a SQLAlchemy URL, e.g. postgresql://user:pass@host/db (default: SQLite in the data dir)"
    )
    pillars_raw: str = setting(
        "plan,generate,publish,analyze,engage,remarket", "INKWELL_PILLARS", "comma-separated pillar ids"
    )
    plans_file: Path | None = setting(None, "INKWELL_PLANS_FILE", "the subscription plans file, libs/config/plans.toml")
    authorized_parties_raw: str = setting(
        "", "CLERK_AUTHORIZED_PARTIES", "comma-separated frontend origins, e.g. https://app.example.com"
    )
    auth_timeout_s: float = setting(
        2.0,
        "INKWELL_AUTH_TIMEOUT_S",
        "seconds between 0.05 and 30, longer than CLERK_JWKS_TIMEOUT_S",
        gt=0.05,
        le=30,
    )
    # The auth service's JWKS fetch deadline (same variable): read here only to check that a hung
    # Clerk is reported as JWKS_UNAVAILABLE by auth, not as AUTH_UNAVAILABLE by the gateway.
    jwks_timeout_s: float = setting(
        1.5, "CLERK_JWKS_TIMEOUT_S", "the auth service's value, seconds between 0.1 and 30", gt=0, le=30
    )
    max_header_bytes: int = setting(
        32_768,
        "INKWELL_MAX_HEADER_BYTES",
        "bytes of request headers accepted (431 above), 4096 to 1048576",
        ge=4096,
        le=1_048_576,
    )
    max_token_bytes: int = setting(
        8192,
        "INKWELL_MAX_TOKEN_BYTES",
        "bytes of session token accepted (401 TOKEN_TOO_LARGE above), 1024 to 65536",
        ge=1024,
        le=65_536,
    )
    readiness_timeout_s: float = setting(
        1.0, "INKWELL_READINESS_TIMEOUT_S", "seconds between 0.05 and 10", gt=0.05, le=10
    )
    session_cache_size: int = setting(
        10_000, "INKWELL_SESSION_CACHE_SIZE", "number of verified tokens to keep, 0 to 1000000", ge=0, le=1_000_000
    )
    max_body_bytes: int = setting(
        8 * 1024 * 1024,
        "INKWELL_MAX_BODY_BYTES",
        f"bytes a request body may have, 1024 to {MAX_BODY_CAP} (bodies over it are refused with 413 before"
        " they are read)",
        ge=1024,
        le=MAX_BODY_CAP,
    )
    failure_log_window_s: float = setting(
        60.0, "INKWELL_FAILURE_LOG_WINDOW_S", "seconds between 1 and 3600", ge=1, le=3600
    )
    rate_per_s: float = setting(
        20.0,
        "INKWELL_RATE_PER_S",
        "requests per second one user may make, sustained (0 turns fair sharing off), 0 to 100000",
        ge=0,
        le=100_000,
    )
    rate_burst: int = setting(
        60, "INKWELL_RATE_BURST", "requests one user may make at once, 1 to 100000", ge=1, le=100_000
    )
    rate_max_delay_s: float = setting(
        1.0,
        "INKWELL_RATE_MAX_DELAY_S",
        "seconds a request over the burst may wait for its turn before a 429, 0 to 10",
        ge=0,
        le=10,
    )
    read_cache_ttl_s: float = setting(
        1.0,
        "INKWELL_READ_CACHE_TTL_S",
        "seconds a polled read (monitoring, today workflow) is answered from the per-user cache, 0 to 10",
        ge=0,
        le=10,
    )
    loop_block_warn_ms: float = setting(
        0.0,
        "INKWELL_LOOP_BLOCK_WARN_MS",
        "log EVENT_LOOP_BLOCKED for a loop callback using more CPU than this (0 = off; tests use 8), 0 to 10000",
        ge=0,
        le=10_000,
    )

    ops_users_raw: str = setting(
        "",
        "INKWELL_OPS_USERS",
        "comma-separated issuer-scoped user ids allowed on /ops, e.g. user_2abc (Clerk) or dev:alice (development)",
    )
    ops_org_roles_raw: str = setting(
        "",
        "INKWELL_OPS_ORG_ROLES",
        "comma-separated exact org_id:role pairs allowed on /ops, e.g. org_2xyz:org:admin",
    )
    ops_loopback: bool = setting(
        False,
        "INKWELL_OPS_LOOPBACK",
        "true lets any request from 127.0.0.1 see /ops without signing in (development only); default false",
    )

    @field_validator("authorized_parties_raw")
    @classmethod
    def _check_parties(cls, value: str) -> str:
        parse_origins(value)
        return value

    @field_validator("ops_users_raw")
    @classmethod
    def _check_ops_users(cls, value: str) -> str:
        parse_users(value)
        return value

    @field_validator("ops_org_roles_raw")
    @classmethod
    def _check_ops_org_roles(cls, value: str) -> str:
        parse_org_roles(value)
        return value

    @property
    def ops_access(self) -> OpsAccess:
        return OpsAccess(parse_users(self.ops_users_raw), parse_org_roles(self.ops_org_roles_raw))

    def cross_check(self) -> list[str]:
        """Settings that are valid alone but wrong together (each names the variables and the fix)."""
        problems = super().cross_check()
        if self.is_production and self.ops_loopback:
            problems.append(
                "INKWELL_OPS_LOOPBACK: loopback access to /ops is refused in production (behind a proxy every "
                "request comes from loopback). Fix: unset INKWELL_OPS_LOOPBACK and list operators in "
                "INKWELL_OPS_USERS or INKWELL_OPS_ORG_ROLES"
            )
        if self.auth_timeout_s < self.jwks_timeout_s + AUTH_DEADLINE_MARGIN_S:
            problems.append(
                f"INKWELL_AUTH_TIMEOUT_S: {self.auth_timeout_s:g} s is not longer than CLERK_JWKS_TIMEOUT_S "
                f"({self.jwks_timeout_s:g} s) + {AUTH_DEADLINE_MARGIN_S:g} s, so a hung Clerk would be reported "
                f"as AUTH_UNAVAILABLE. Fix: set INKWELL_AUTH_TIMEOUT_S to at least "
                f"{self.jwks_timeout_s + AUTH_DEADLINE_MARGIN_S:g}, or lower CLERK_JWKS_TIMEOUT_S"
            )
        if self.max_token_bytes + 64 > self.max_header_bytes:
            problems.append(
                "INKWELL_MAX_TOKEN_BYTES: a token of that size does not fit in INKWELL_MAX_HEADER_BYTES. "
                "Fix: raise INKWELL_MAX_HEADER_BYTES or lower INKWELL_MAX_TOKEN_BYTES"
            )
        return problems

    @property
    def pillars(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.pillars_raw.split(",") if p.strip())

    @field_validator("auth_address", "index_address", "llm_address")
    @classmethod
    def _check_address(cls, value: str) -> str:
        if ":" not in value.strip():
            raise ValueError(f"{value!r} is not host:port")
        return value.strip()

    @property
    def cors_origins(self) -> tuple[str, ...]:
        """The same list as Clerk's authorized parties; local dev servers too in development."""
        origins = parse_origins(self.authorized_parties_raw)
        if not origins and not self.is_production:
            return DEV_ORIGINS
        return origins
