"""`inkwell doctor`: every check the RCA tracker answered by hand, answered by the code.

Each check says PASS, WARN or FAIL with the cause, the fix, its reason code and whether it is a
configuration problem (CONFIG), a failing dependency (UPSTREAM) or a bug (DEFECT).
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.runtime.reasons import CATALOG
from libs.runtime.settings import BaseServiceSettings, ConfigError, load


@dataclass
class Check:
    area: str
    name: str
    status: str  # PASS, WARN, FAIL
    cause: str
    fix: str = ""
    reason: str = ""
    klass: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check(area: str, name: str, status: str, cause: str, reason: str = "", fix: str = "") -> Check:
    entry = CATALOG.get(reason)
    return Check(
        area,
        name,
        status,
        cause,
        fix or (entry.remedy if entry else ""),
        reason,
        entry.klass.value if entry else ("CONFIG" if status != "PASS" else ""),
    )


# --- Clerk -------------------------------------------------------------------------------------------


async def clerk_checks() -> list[Check]:
    from services.auth.key_sources import frontend_api_jwks_url
    from services.auth.self_check import ConfigSelfCheck
    from services.auth.settings import AuthSettings

    out: list[Check] = []
    try:
        settings = load(AuthSettings)
    except ConfigError as exc:
        return [
            _check(
                "clerk",
                "settings",
                "FAIL",
                problem,
                "UNVERIFIED_JWT_SETTING_IGNORED"
                if problem.startswith("ALLOW_UNVERIFIED_JWT_DEV:")
                else "CLERK_NOT_CONFIGURED",
                fix="see the message",
            )
            for problem in exc.problems
        ]
    if settings.allow_unverified_dev:
        out.append(
            _check(
                "clerk",
                "unverified mode",
                "FAIL",
                "ALLOW_UNVERIFIED_JWT_DEV is set (it is ignored, but someone expects unverified tokens to pass)",
                "UNVERIFIED_JWT_SETTING_IGNORED",
            )
        )
    if not settings.clerk_issuer:
        status = "WARN" if not settings.is_production else "FAIL"
        out.append(
            _check(
                "clerk",
                "keys",
                status,
                "no Clerk instance configured (CLERK_PUBLISHABLE_KEY unset)",
                "CLERK_NOT_CONFIGURED",
            )
        )
        return out
    out.append(
        _check(
            "clerk",
            "keys",
            "PASS",
            f"issuer {settings.clerk_issuer}; secret key {'present' if settings.secret_key else 'absent'}",
        )
    )
    async with httpx.AsyncClient(timeout=settings.jwks_timeout_s, follow_redirects=False) as client:
        check = ConfigSelfCheck(settings, client)
        await check._check_instance_match()
        for finding in check.findings:
            status = "FAIL" if finding.severity == 3 else "WARN"
            out.append(_check("clerk", "same instance", status, finding.message, finding.code, finding.fix))
        if settings.secret_key and not any(f.code.startswith("CLERK_") for f in check.findings):
            out.append(
                _check(
                    "clerk",
                    "same instance",
                    "PASS",
                    "publishable and secret key serve the same key ids (one Clerk instance)",
                )
            )
        if not settings.jwt_key:
            url = frontend_api_jwks_url(settings.clerk_frontend_api_url)
            try:
                response = await client.get(url)
                response.raise_for_status()
                kids = [k.get("kid") for k in response.json().get("keys", [])]
                out.append(_check("clerk", "JWKS reachable", "PASS", f"{url} serves {len(kids)} key(s)"))
                server_date = response.headers.get("date")
                if server_date:
                    skew = time.time() - email.utils.parsedate_to_datetime(server_date).timestamp()
                    status = "PASS" if abs(skew) <= settings.clock_skew_s else "WARN"
                    out.append(
                        _check(
                            "clerk",
                            "clock",
                            status,
                            f"local clock is {skew:+.1f} s from the JWKS server's "
                            f"(allowed skew {settings.clock_skew_s:g} s)",
                            "" if status == "PASS" else "TOKEN_NOT_YET_VALID",
                        )
                    )
            except (httpx.HTTPError, ValueError) as exc:
                out.append(
                    _check(
                        "clerk",
                        "JWKS reachable",
                        "FAIL",
                        f"{url}: {type(exc).__name__}: {exc}"[:300],
                        "JWKS_UNAVAILABLE",
                    )
                )
    return out


# --- LLM -----------------------------------------------------------------------------------------------


async def llm_checks() -> list[Check]:
    from libs.model_registry.registry import ModelRegistry
    from services.llm.main import build_routes
    from services.llm.routes import RouteState
    from services.llm.settings import LlmSettings

    try:
        settings = load(LlmSettings)
    except ConfigError as exc:
        return [_check("llm", "settings", "FAIL", p, "NOT_CONFIGURED", fix="see the message") for p in exc.problems]
    token = settings.hf_token.get_secret_value()
    if not token:
        out = [
            _check(
                "llm",
                "HF_TOKEN",
                "WARN",
                "HF_TOKEN is not set: the Hugging Face provider is skipped",
                "PROVIDER_NOT_CONFIGURED",
            )
        ]
    elif not token.startswith("hf_"):
        out = [
            _check("llm", "HF_TOKEN", "FAIL", "HF_TOKEN does not start with hf_ (the router refuses it)", "CREDENTIALS")
        ]
    else:
        out = [_check("llm", "HF_TOKEN", "PASS", "present and well formed")]
    registry = ModelRegistry(settings)
    try:
        routes = build_routes(settings, registry, log_changes=False)
        await asyncio.gather(*(r.preflight() for r in routes.values()))
        for route in routes.values():
            if route.state is RouteState.OK:
                out.append(
                    _check(
                        "llm",
                        f"route {route.name}",
                        "PASS",
                        f"{route.base_url}/models lists {len(route.models)} models",
                    )
                )
            elif route.state is RouteState.NOT_CONFIGURED:
                out.append(
                    _check("llm", f"route {route.name}", "WARN", f"{route.base_url}: {route.detail}", "NOT_CONFIGURED")
                )
            else:
                out.append(_check("llm", f"route {route.name}", "FAIL", route.detail, route.state.value))
        for name, spec in registry.catalog.remote_models.items():
            route = routes[spec.provider]
            label = f"model {spec.model} via {route.base_url}"
            if route.state is not RouteState.OK:
                out.append(
                    _check("llm", name, "WARN", f"{label}: not checked ({route.state.value})", route.state.value)
                )
                continue
            unavailable = route.model_unavailable(spec.model)
            info = route.models.get(spec.model.split(":", 1)[0])
            if unavailable:
                out.append(_check("llm", name, "FAIL", f"{label}: {unavailable}", "MODEL_UNAVAILABLE"))
            elif info is not None and info.structured is False:
                out.append(
                    _check(
                        "llm",
                        name,
                        "WARN",
                        f"{label}: live, but no structured output (prompted JSON is used)",
                        "CAPABILITY",
                    )
                )
            else:
                out.append(_check("llm", name, "PASS", f"{label}: live"))
    finally:
        registry.close()
    return out


# --- models ----------------------------------------------------------------------------------------------


async def model_checks() -> list[Check]:
    from libs.model_registry.cli import probe_absent
    from libs.model_registry.registry import ModelRegistry
    from libs.model_registry.settings import ModelRegistrySettings

    registry = ModelRegistry(load(ModelRegistrySettings, cross_checked=False))  # clerk reports those
    out = []
    try:
        probes = await asyncio.to_thread(probe_absent, registry)
        for row in registry.rows():
            if row.kind != "local":
                continue
            roles = ",".join(row.roles) or "-"
            fits = "" if row.fits_in_memory else f"; needs {row.ram_estimate_bytes / 1024**3:.1f} GiB (does not fit)"
            probe = probes.get(row.name)
            if row.download_state == "READY":
                status = "PASS" if row.fits_in_memory else "WARN"
                out.append(
                    _check(
                        "models",
                        f"{row.name} ({roles})",
                        status,
                        f"ready ({row.source}){fits}",
                        "" if row.fits_in_memory else "INSUFFICIENT_MEMORY",
                    )
                )
            elif isinstance(probe, int):
                out.append(
                    _check(
                        "models",
                        f"{row.name} ({roles})",
                        "WARN",
                        f"not downloaded ({probe / 1e9:.2f} GB); `inkwell models pull {row.name}`{fits}",
                        "NOT_DOWNLOADED",
                    )
                )
            else:
                reason = probe.reason if probe is not None else row.reason or "NOT_DOWNLOADED"
                message = probe.message if probe is not None else row.message
                status = "FAIL" if "embeddings" in row.roles else "WARN"
                out.append(_check("models", f"{row.name} ({roles})", status, f"{reason}: {message}", reason))
    finally:
        registry.close()
    return out


# --- index and services ------------------------------------------------------------------------------------


def index_checks(data_dir: Path) -> list[Check]:
    out = []
    index_dir = Path(os.environ.get("INKWELL_INDEX_DIR") or data_dir / "index")
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=index_dir):
            pass
        out.append(_check("index", "storage", "PASS", f"{index_dir} is writable"))
    except OSError as exc:
        out.append(
            _check(
                "index",
                "storage",
                "FAIL",
                f"{index_dir} is not writable ({exc.strerror})",
                "INDEX_SYNC_FAILED",
                fix="point INKWELL_DATA_DIR at a writable directory",
            )
        )
        return out
    store = index_dir / "store.sqlite3"
    if store.exists():
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
            queued, oldest = db.execute("SELECT COUNT(*), MIN(created_at) FROM jobs WHERE state = 'queued'").fetchone()
        age = time.time() - oldest if oldest else 0
        status = "PASS" if queued == 0 or age < 300 else "WARN"
        out.append(
            _check(
                "index",
                "queue",
                status,
                f"{queued} job(s) queued; oldest {age:.0f} s old",
                "" if status == "PASS" else "INDEX_NOT_READY",
            )
        )
    return out


async def _health(address: str, service: str) -> str:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=2
            )
        except grpc.aio.AioRpcError as exc:
            return "UNREACHABLE" if exc.code() == grpc.StatusCode.UNAVAILABLE else exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


async def service_checks() -> list[Check]:
    env = os.environ
    targets = [
        ("auth", env.get("INKWELL_AUTH_ADDR", "127.0.0.1:50051"), "inkwell.auth.v1.AuthService"),
        ("llm", env.get("INKWELL_LLM_ADDR", "127.0.0.1:50052"), "inkwell.llm.v1.LlmService"),
        ("index", env.get("INKWELL_INDEX_ADDR", "127.0.0.1:50053"), "inkwell.index.v1.IndexService"),
    ]
    out = []
    for name, address, service in targets:
        live, ready = await _health(address, ""), await _health(address, service)
        if ready == "SERVING":
            out.append(_check("services", name, "PASS", f"{address} live and ready"))
        elif live == "SERVING":
            out.append(
                _check("services", name, "WARN", f"{address} is live but {service} is {ready}", "BACKENDS_NOT_READY")
            )
        else:
            out.append(
                _check(
                    "services",
                    name,
                    "FAIL",
                    f"{address} is {live}",
                    "BACKEND_UNAVAILABLE",
                    fix=f"start it (make run) or fix INKWELL_{name.upper()}_ADDR",
                )
            )
    gateway = env.get("INKWELL_GATEWAY_URL", f"http://127.0.0.1:{env.get('INKWELL_GATEWAY_PORT', '8000')}")
    try:
        async with httpx.AsyncClient(timeout=3) as client:
            live_status = (await client.get(f"{gateway}/healthz")).status_code
            readyz = await client.get(f"{gateway}/readyz")
        if readyz.status_code == 200:
            out.append(_check("services", "gateway", "PASS", f"{gateway} live and ready"))
        else:
            out.append(
                _check(
                    "services",
                    "gateway",
                    "WARN",
                    f"{gateway} live ({live_status}); readyz says {readyz.json().get('backends')}",
                    "BACKENDS_NOT_READY",
                )
            )
    except httpx.HTTPError as exc:
        out.append(
            _check(
                "services",
                "gateway",
                "FAIL",
                f"{gateway}: {type(exc).__name__}",
                "BACKEND_UNAVAILABLE",
                fix="start it (make run) or set INKWELL_GATEWAY_URL",
            )
        )
    return out


async def run_all(areas: list[str] | None = None) -> list[Check]:
    data_dir = load(BaseServiceSettings, cross_checked=False).data_dir  # the clerk checks report cross-checks
    groups: dict[str, Callable[[], Awaitable[list[Check]]]] = {
        "clerk": clerk_checks,
        "llm": llm_checks,
        "models": model_checks,
        "services": service_checks,
    }
    out: list[Check] = []
    for area, run in groups.items():
        if areas and area not in areas:
            continue
        try:
            out += await run()
        except Exception as exc:  # a crashing check is a defect, reported like any other result
            out.append(
                Check(
                    area,
                    "check",
                    "FAIL",
                    f"the check crashed: {type(exc).__name__}: {exc}"[:300],
                    "report it",
                    "INTERNAL_DEFECT",
                    "DEFECT",
                )
            )
    if not areas or "index" in areas:
        out += index_checks(data_dir)
    return out
