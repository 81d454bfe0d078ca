"""Settings read from the environment and validated once, at startup.

A bad value stops the process with one line per problem that names the variable and the fix,
instead of surfacing later as a confusing runtime failure.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class ConfigError(Exception):
    """One or more settings are wrong; the message lists each with its fix."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


def setting(default: Any, env: str, fix: str, **kwargs: Any) -> Any:
    """A field read from environment variable `env`, with the fix shown when it is invalid."""
    return Field(default, validation_alias=AliasChoices(env), json_schema_extra={"env": env, "fix": fix}, **kwargs)


class BaseServiceSettings(BaseSettings):
    """Settings every Inkwell process shares."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=False, frozen=True)

    # Fail closed: a process started without INKWELL_ENV is a production process. Only `make run`
    # (scripts/run_stack.py) asks for development, explicitly.
    env: Environment = setting(
        Environment.PRODUCTION, "INKWELL_ENV", "set INKWELL_ENV to 'production' (the default) or 'development'"
    )
    log_level: str = setting(
        "INFO", "INKWELL_LOG_LEVEL", "use DEBUG, INFO, WARNING or ERROR", pattern=r"^(?i:debug|info|warning|error)$"
    )
    data_dir: Path = setting(Path("data"), "INKWELL_DATA_DIR", "point INKWELL_DATA_DIR at a writable directory")
    shutdown_grace_s: float = setting(
        10.0, "INKWELL_SHUTDOWN_GRACE_S", "a number of seconds between 0 and 120", ge=0, le=120
    )
    drain_s: float = setting(
        5.0,
        "INKWELL_DRAIN_S",
        "seconds between 0 and 120 to keep serving, NOT_SERVING/503 on readiness, after SIGTERM",
        ge=0,
        le=120,
    )
    # gRPC servers close each connection after this age (plus a grace for in-flight calls), so
    # clients re-resolve DNS and spread calls over replicas added since (headless Services).
    grpc_max_connection_age_s: float = setting(
        300.0, "INKWELL_GRPC_MAX_CONNECTION_AGE_S", "seconds between 10 and 86400", ge=10, le=86400
    )

    # Read by every process so that none of them starts in production while someone expects a
    # development shortcut to be on.
    allow_unverified_dev: str = setting(
        "", "ALLOW_UNVERIFIED_JWT_DEV", "unset it: Inkwell never skips verification; use INKWELL_DEV_ISSUER"
    )
    dev_issuer_enabled: bool | None = setting(
        None, "INKWELL_DEV_ISSUER", "true or false; it defaults to true in development and is refused in production"
    )
    # The longest internal identity token the auth service mints and every service accepts
    # (exp - iat); set the same value on every process.
    internal_token_ttl_s: float = setting(60.0, "INKWELL_INTERNAL_TOKEN_TTL_S", "seconds between 1 and 60", ge=1, le=60)

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def dev_issuer(self) -> bool:
        """Whether the local development issuer is trusted: on in development unless turned off."""
        if self.dev_issuer_enabled is not None:
            return self.dev_issuer_enabled
        return not self.is_production

    def cross_check(self) -> list[str]:
        """Problems that involve more than one setting; subclasses extend this list."""
        problems = []
        if self.is_production and self.dev_issuer:
            problems.append(
                "INKWELL_DEV_ISSUER: the development issuer is refused in production. "
                "Fix: unset INKWELL_DEV_ISSUER, or use INKWELL_ENV=development on a laptop"
            )
        if self.is_production and self.allow_unverified_dev:
            problems.append(
                "ALLOW_UNVERIFIED_JWT_DEV: is set, and production never accepts an unverified token. "
                "Fix: unset ALLOW_UNVERIFIED_JWT_DEV (for local work: make run, then `inkwell token --user NAME`)"
            )
        return problems


S = TypeVar("S", bound=BaseSettings)


def load(cls: type[S], *, cross_checked: bool = True, **overrides: Any) -> S:
    """Build settings from the environment; raise ConfigError naming every bad variable.

    `cross_checked=False` skips the problems between settings (e.g. production with the dev issuer):
    only for diagnostics (the doctor) that report those problems themselves.
    """
    try:
        settings = cls(**overrides)
    except ValidationError as exc:
        raise ConfigError([_describe(cls, err) for err in exc.errors()]) from None
    cross_check = getattr(settings, "cross_check", None) if cross_checked else None
    problems = cross_check() if callable(cross_check) else []
    if problems:
        raise ConfigError(problems)
    return settings


def _describe(cls: type[BaseSettings], err: Any) -> str:
    loc = err.get("loc") or ("?",)
    name = str(loc[0])
    env, fix = name, ""
    for field_name, info in cls.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if name in (field_name, extra.get("env")):
            env, fix = str(extra.get("env", field_name)), str(extra.get("fix", ""))
            break
    message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{env}: {message}" + (f". Fix: {fix}" if fix else "")


def parse_origins(value: str) -> tuple[str, ...]:
    """Comma-separated origins (scheme://host[:port]); ValueError names the bad one."""
    origins = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") or parts.query:
            raise ValueError(f"{item!r} is not an origin like https://app.example.com")
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return tuple(origins)
