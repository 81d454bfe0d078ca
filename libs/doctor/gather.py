"""`inkwell doctor` and /ops: gather every service's own Diagnose answer and add only what the
gatherer can see itself (whether each service answers, and its clock against ours).

A gather that fails (service down, timeout, refused identity) is a FAIL row naming the service and
the reason, never a missing row or an empty table.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inkwell.diagnostics.v1 import diagnostics_service_pb2 as pb
from inkwell.diagnostics.v1 import diagnostics_service_pb2_grpc as pb_grpc
from libs.runtime.client import call_metadata
from libs.runtime.errors import from_rpc_error
from libs.runtime.protoenum import from_enum
from libs.runtime.reasons import CATALOG

CLOCK_SKEW_S = 5.0  # what token verification tolerates (CLERK_CLOCK_SKEW_S default)


@dataclass
class Check:
    area: str
    name: str
    status: str  # PASS, WARN, FAIL
    cause: str
    fix: str = ""
    reason: str = ""
    klass: str = ""
    service: str = ""  # which service computed it ("" for the gatherer itself)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check(area: str, name: str, status: str, cause: str, reason: str = "", fix: str = "") -> Check:
    entry = CATALOG.get(reason) if status != "PASS" else None
    return Check(
        area,
        name,
        status,
        cause,
        (fix or (entry.remedy if entry else "")) if status != "PASS" else "",
        reason,
        entry.klass.value if entry else "",
    )


@dataclass
class Target:
    """A service to gather from: its short name ("auth"), address and an open channel."""

    name: str
    address: str
    channel: grpc.aio.Channel
    service_name: str


@dataclass
class Gathered:
    checks: list[Check] = field(default_factory=list)
    # Each service's recent WARNING-or-worse JSON log lines (DiagnoseResponse.recent_log_lines).
    log_lines: dict[str, list[str]] = field(default_factory=dict)


def _from_finding(service: str, f: pb.Finding) -> Check:
    return Check(
        f.area,
        f.name,
        from_enum(pb.CheckStatus, f.status) or "FAIL",
        f.cause,
        f.fix,
        f.reason,
        from_enum(pb.ReasonClass, f.reason_class),
        service,
    )


async def _health(target: Target, timeout_s: float) -> tuple[str, str]:
    """(liveness, readiness) health status names, or the gRPC code that stopped the probe."""
    stub = health_pb2_grpc.HealthStub(target.channel)

    async def one(name: str) -> str:
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            return "UNREACHABLE" if exc.code() == grpc.StatusCode.UNAVAILABLE else exc.code().name
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    live, ready = await asyncio.gather(one(""), one(target.service_name))
    return live, ready


def _reachability(target: Target, live: str, ready: str) -> Check:
    if ready == "SERVING":
        return check("services", target.name, "PASS", f"{target.address} live and ready")
    if live == "SERVING":
        return check(
            "services", target.name, "WARN", f"{target.address} is live but not ready ({ready})", "BACKENDS_NOT_READY"
        )
    return check(
        "services",
        target.name,
        "FAIL",
        f"{target.address} is {live}",
        "BACKEND_UNAVAILABLE",
        fix=f"start it (make run) or fix INKWELL_{target.name.upper()}_ADDR",
    )


def _clock(target: Target, reply: pb.DiagnoseResponse, sent: float, received: float) -> Check:
    """The service's clock against ours, within the round trip's uncertainty."""
    theirs = reply.now.ToNanoseconds() / 1e9
    skew = theirs - (sent + received) / 2
    slack = (received - sent) / 2
    ok = abs(skew) <= CLOCK_SKEW_S + slack
    return check(
        target.name,
        "clock",
        "PASS" if ok else "WARN",
        f"{reply.instance or target.address} is {skew:+.1f} s from this host (±{slack:.2f} s)",
        "" if ok else "CLOCK_SKEW",
    )


async def gather_one(target: Target, identity_token: str | None, timeout_s: float) -> tuple[list[Check], list[str]]:
    live, ready = await _health(target, min(timeout_s, 2.0))
    out = [_reachability(target, live, ready)]
    if live != "SERVING":
        out.append(
            check(
                target.name,
                "diagnose",
                "FAIL",
                f"{target.name} at {target.address} did not answer ({live}): its own checks are unknown",
                "DIAGNOSE_UNAVAILABLE",
            )
        )
        return out, []
    stub = pb_grpc.DiagnosticsServiceStub(target.channel)
    sent = time.time()
    try:
        reply = await stub.Diagnose(
            pb.DiagnoseRequest(), timeout=timeout_s, metadata=call_metadata(identity_token or None)
        )
    except grpc.aio.AioRpcError as exc:
        remote = from_rpc_error(exc)
        reason = remote.reason if remote.reason in CATALOG else "DIAGNOSE_UNAVAILABLE"
        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            reason = "DEADLINE_EXCEEDED"
        out.append(
            check(
                target.name,
                "diagnose",
                "FAIL",
                f"{target.name} at {target.address}: Diagnose failed ({exc.code().name}: {remote.message[:200]})",
                reason,
            )
        )
        return out, []
    received = time.time()
    out.append(_clock(target, reply, sent, received))
    out += [_from_finding(target.name, f) for f in reply.findings]
    return out, list(reply.recent_log_lines)


async def gather(targets: list[Target], identity_token: str | None, timeout_s: float = 10.0) -> Gathered:
    """Ask every target at once; each answer or failure becomes rows, in the targets' order."""
    results = await asyncio.gather(*(gather_one(t, identity_token, timeout_s) for t in targets))
    out = Gathered()
    for target, (checks, lines) in zip(targets, results, strict=True):
        out.checks += checks
        out.log_lines[target.name] = lines
    return out


async def gateway_checks(url: str, timeout_s: float = 3.0) -> list[Check]:
    """What an operator's machine sees of the gateway: liveness and readiness over HTTP."""
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            live = (await client.get(f"{url}/healthz")).status_code
            readyz = await client.get(f"{url}/readyz")
    except httpx.HTTPError as exc:
        return [
            check(
                "services",
                "gateway",
                "FAIL",
                f"{url}: {type(exc).__name__}",
                "BACKEND_UNAVAILABLE",
                fix="start it (make run) or set INKWELL_GATEWAY_URL",
            )
        ]
    if readyz.status_code == 200:
        return [check("services", "gateway", "PASS", f"{url} live and ready")]
    try:
        backends = readyz.json().get("backends")
    except ValueError:
        backends = readyz.status_code
    return [check("services", "gateway", "WARN", f"{url} live ({live}); readyz says {backends}", "BACKENDS_NOT_READY")]
