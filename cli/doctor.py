"""`inkwell doctor`: ask each running service for its own checks (Diagnose) and print them.

The services answer from their own settings and data; this command adds only what it sees from
here: whether each service and the gateway answer, and each service's clock against this host's.
Diagnose needs an internal identity: the command exchanges a session token (--token, or
INKWELL_SESSION_TOKEN; in development a fresh development token) at the auth service for one.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import grpc

from inkwell.auth.v1 import auth_service_pb2 as auth_pb
from inkwell.auth.v1 import auth_service_pb2_grpc as auth_grpc
from inkwell.index.v1 import index_service_pb2 as index_pb
from inkwell.llm.v1 import llm_service_pb2 as llm_pb
from libs.doctor.gather import Check, Target, check, gateway_checks, gather
from libs.runtime.client import open_channel
from libs.runtime.errors import from_rpc_error
from libs.runtime.settings import BaseServiceSettings, load

SERVICES = {
    "auth": ("INKWELL_AUTH_ADDR", "127.0.0.1:50051", auth_pb.DESCRIPTOR.services_by_name["AuthService"].full_name),
    "llm": ("INKWELL_LLM_ADDR", "127.0.0.1:50052", llm_pb.DESCRIPTOR.services_by_name["LlmService"].full_name),
    "index": ("INKWELL_INDEX_ADDR", "127.0.0.1:50053", index_pb.DESCRIPTOR.services_by_name["IndexService"].full_name),
}
# Which services answer for each --only area.
AREAS = {
    "clerk": ("auth",),
    "llm": ("llm",),
    "models": ("llm", "index"),
    "index": ("index",),
    "services": ("auth", "llm", "index"),
}
TIMEOUT_S = 15.0


def _session_token(explicit: str | None) -> str | None:
    token = explicit or os.environ.get("INKWELL_SESSION_TOKEN")
    if token:
        return token
    settings = load(BaseServiceSettings, cross_checked=False)  # the services' Diagnose report those
    from services.auth.dev_issuer import KEY_FILE, DevIssuer

    # Production is the default, so with INKWELL_ENV unset (`make doctor` next to `make run`) a dev
    # token is signed only with the key that a development auth service already created.
    if settings.is_production and (os.environ.get("INKWELL_ENV") or not (settings.data_dir / KEY_FILE).exists()):
        return None
    try:
        return DevIssuer(Path(settings.data_dir)).mint("doctor", ttl_s=300)
    except OSError:
        return None


async def _identity(auth: Target, session_token: str | None) -> tuple[str | None, Check | None]:
    """An internal identity token for Diagnose, or the row that says why there is none."""
    if not session_token:
        return None, check(
            "doctor",
            "identity",
            "FAIL",
            "no session token to ask the services for their own checks",
            "IDENTITY_MISSING",
            fix="pass --token (an operator's session token) or set INKWELL_SESSION_TOKEN",
        )
    try:
        reply = await auth_grpc.AuthServiceStub(auth.channel).VerifySession(
            auth_pb.VerifySessionRequest(token=session_token), timeout=5.0
        )
    except grpc.aio.AioRpcError as exc:
        remote = from_rpc_error(exc)
        return None, check(
            "doctor",
            "identity",
            "FAIL",
            f"the auth service refused the session token ({exc.code().name}: {remote.message[:200]})",
            remote.reason or "AUTH_UNAVAILABLE",
        )
    return reply.internal_token, None


async def run(areas: list[str] | None, token: str | None) -> list[Check]:
    wanted = sorted({s for a in (areas or AREAS) for s in AREAS[a]}, key=list(SERVICES).index)
    channels = {n: open_channel(os.environ.get(SERVICES[n][0], SERVICES[n][1])) for n in {*wanted, "auth"}}
    try:
        targets = [
            Target(n, os.environ.get(SERVICES[n][0], SERVICES[n][1]), channels[n], SERVICES[n][2]) for n in wanted
        ]
        auth = Target("auth", os.environ.get(SERVICES["auth"][0], SERVICES["auth"][1]), channels["auth"], "")
        internal, problem = await _identity(auth, _session_token(token))
        gathered = await gather(targets, internal, TIMEOUT_S)
        rows = ([problem] if problem else []) + gathered.checks
        if not areas or "services" in areas:
            port = os.environ.get("INKWELL_GATEWAY_PORT", "8000")
            rows += await gateway_checks(os.environ.get("INKWELL_GATEWAY_URL", f"http://127.0.0.1:{port}"))
    finally:
        for channel in channels.values():
            await channel.close()
    if not areas:
        return rows
    own = {*wanted, "doctor"}  # the gatherer's rows about the services it asked (clock, diagnose, identity)
    return [
        r for r in rows if r.area in areas or (not r.service and r.area in own) or ("services" in areas and r.service)
    ]


def run_doctor(areas: list[str] | None, token: str | None) -> list[Check]:
    return asyncio.run(run(areas, token))
