"""The auth service's own doctor checks (Diagnose): its keys, the pinned Clerk instance's JWKS and
the clock against Clerk's, and the configuration self-check (key environments, instance match)."""

from __future__ import annotations

import email.utils
import time

import httpx

from inkwell.auth.v1 import auth_service_pb2 as auth_pb
from inkwell.diagnostics.v1 import diagnostics_service_pb2 as pb
from libs.runtime.diagnostics import Checks, finding
from services.auth.key_sources import frontend_api_jwks_url
from services.auth.self_check import ConfigSelfCheck
from services.auth.service import AuthComponents

AREA = "clerk"


async def _jwks_and_clock(components: AuthComponents) -> list[pb.Finding]:
    settings = components.settings
    url = frontend_api_jwks_url(settings.clerk_frontend_api_url)
    try:
        response = await components.http.get(url, timeout=settings.jwks_timeout_s)
        response.raise_for_status()
        kids = [k.get("kid") for k in response.json().get("keys", [])]
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        return [finding(AREA, "JWKS reachable", "FAIL", f"{url}: {type(exc).__name__}", "JWKS_UNAVAILABLE")]
    out = [finding(AREA, "JWKS reachable", "PASS", f"{url} serves {len(kids)} key(s)")]
    server_date = response.headers.get("date")
    if server_date:
        skew = time.time() - email.utils.parsedate_to_datetime(server_date).timestamp()
        ok = abs(skew) <= settings.clock_skew_s
        out.append(
            finding(
                AREA,
                "clock",
                "PASS" if ok else "WARN",
                f"this host's clock is {skew:+.1f} s from Clerk's (allowed skew {settings.clock_skew_s:g} s)",
                "" if ok else "CLOCK_SKEW",
            )
        )
    return out


async def _configuration(components: AuthComponents) -> list[pb.Finding]:
    settings = components.settings
    check = ConfigSelfCheck(settings, components.http, log_findings=False)
    await check.run()
    out = [
        finding(
            AREA,
            f.code.lower().replace("_", " "),
            "FAIL" if f.severity == auth_pb.FINDING_SEVERITY_ERROR else "WARN",
            f.message,
            f.code,
            f.fix,
        )
        for f in check.findings
    ]
    for trusted in components.verifier.issuers:
        loaded = trusted.keys.loaded
        out.append(
            finding(
                AREA,
                f"keys {trusted.keys.name}",
                "PASS" if loaded else "FAIL",
                f"issuer {trusted.issuer}: keys {'loaded' if loaded else 'not loaded yet'}",
                "" if loaded else "JWKS_UNAVAILABLE",
            )
        )
    if settings.clerk_issuer and settings.secret_key and not any(f.code.startswith("CLERK_") for f in check.findings):
        out.append(finding(AREA, "same instance", "PASS", "publishable and secret key serve the same key ids"))
    return out


async def _jwks(components: AuthComponents) -> list[pb.Finding]:
    settings = components.settings
    return await _jwks_and_clock(components) if settings.clerk_issuer and not settings.jwt_key else []


def auth_checks(components: AuthComponents) -> Checks:
    return {"configuration": lambda: _configuration(components), "JWKS": lambda: _jwks(components)}
