"""Startup configuration self-check, run in the background so it never delays serving.

It answers the tracker's first root-cause question ("are the secret and publishable keys from the
same Clerk instance?") by comparing the key ids each Clerk API serves for them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx

from inkwell.auth.v1 import auth_service_pb2 as pb
from libs.runtime.jwks import parse_jwks
from services.auth.clerk_keys import secret_key_environment
from services.auth.key_sources import backend_api_jwks_url, frontend_api_jwks_url, http_jwks_fetcher
from services.auth.settings import AuthSettings

log = logging.getLogger("inkwell.auth.self_check")

INSTANCE_MISMATCH = "secret key and publishable key belong to different Clerk instances"


@dataclass(frozen=True)
class Finding:
    code: str
    severity: pb.FindingSeverity
    message: str
    fix: str

    def to_proto(self) -> pb.ConfigFinding:
        return pb.ConfigFinding(code=self.code, severity=self.severity, message=self.message, fix=self.fix)


class ConfigSelfCheck:
    def __init__(self, settings: AuthSettings, client: httpx.AsyncClient, *, log_findings: bool = True) -> None:
        self.settings = settings
        self.client = client
        self.log_findings = log_findings  # Diagnose reruns the check on demand without logging again
        self.done = False
        self.findings: list[Finding] = []

    def _add(self, finding: Finding) -> None:
        self.findings.append(finding)
        if not self.log_findings:
            return
        level = {pb.FINDING_SEVERITY_ERROR: logging.ERROR, pb.FINDING_SEVERITY_WARNING: logging.WARNING}.get(
            finding.severity, logging.INFO
        )
        kind = "configuration error" if finding.severity == pb.FINDING_SEVERITY_ERROR else "configuration note"
        log.log(level, f"{kind}: {finding.message}", extra={"reason": finding.code, "fix": finding.fix})

    async def run(self) -> None:
        s = self.settings
        try:
            if s.allow_unverified_dev:
                self._add(
                    Finding(
                        "UNVERIFIED_JWT_SETTING_IGNORED",
                        pb.FINDING_SEVERITY_WARNING,
                        "ALLOW_UNVERIFIED_JWT_DEV is set and ignored: Inkwell never accepts an unverified token",
                        "unset ALLOW_UNVERIFIED_JWT_DEV; for local work use the development issuer "
                        "(INKWELL_ENV=development, then `inkwell token --user NAME`)",
                    )
                )
            if s.dev_issuer:
                self._add(
                    Finding(
                        "DEV_ISSUER_ACTIVE",
                        pb.FINDING_SEVERITY_INFO,
                        "the local development issuer is trusted (INKWELL_ENV=development)",
                        "get a token with `inkwell token --user NAME`",
                    )
                )
            if not s.clerk_issuer:
                self._add(
                    Finding(
                        "CLERK_NOT_CONFIGURED",
                        pb.FINDING_SEVERITY_INFO if s.dev_issuer else pb.FINDING_SEVERITY_ERROR,
                        "no Clerk instance is configured; only development tokens verify",
                        "set CLERK_PUBLISHABLE_KEY (and CLERK_SECRET_KEY) from the Clerk Dashboard",
                    )
                )
            await self._check_instance_match()
        except Exception:  # the self-check must never take the service down
            log.exception("self-check failed", extra={"reason": "SELF_CHECK_DEFECT"})
        finally:
            self.done = True

    async def _check_instance_match(self) -> None:
        s = self.settings
        pk = s.publishable
        if pk is None or not s.secret_key:
            return
        sk_env = secret_key_environment(s.secret_key)
        if sk_env != pk.environment:
            self._add(
                Finding(
                    "CLERK_KEY_ENVIRONMENT_MISMATCH",
                    pb.FINDING_SEVERITY_ERROR,
                    f"{INSTANCE_MISMATCH}: the publishable key is pk_{pk.environment}, the secret key is sk_{sk_env}",
                    "copy both keys from the same instance in Clerk Dashboard > API keys",
                )
            )
            return
        try:
            frontend = await self._kids(frontend_api_jwks_url(s.clerk_frontend_api_url), {})
            backend = await self._kids(
                backend_api_jwks_url(s.backend_api_url), {"Authorization": f"Bearer {s.secret_key}"}
            )
        except Exception as exc:
            self._add(
                Finding(
                    "CLERK_JWKS_UNREACHABLE",
                    pb.FINDING_SEVERITY_WARNING,
                    f"could not compare the instances of the two keys: {type(exc).__name__}",
                    "check network access to the Clerk Frontend API and Backend API",
                )
            )
            return
        if frontend != backend:
            self._add(
                Finding(
                    "CLERK_INSTANCE_MISMATCH",
                    pb.FINDING_SEVERITY_ERROR,
                    f"{INSTANCE_MISMATCH} (Frontend API key ids {sorted(frontend)}, "
                    f"Backend API key ids {sorted(backend)})",
                    "copy CLERK_SECRET_KEY and CLERK_PUBLISHABLE_KEY from the same Clerk instance",
                )
            )

    async def _kids(self, url: str, headers: dict[str, str]) -> frozenset[str]:
        fetch = http_jwks_fetcher(self.client, url, headers)
        return frozenset(parse_jwks(await fetch(), frozenset({"RSA"})))
