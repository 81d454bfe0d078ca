"""/ops: one page for an operator. Services' readiness, model downloads, the index queue, the
doctor's results and the top error signatures of the last hour, with their remedies.

Access (gateway/ops_access.py): a verified principal listed in INKWELL_OPS_USERS or
INKWELL_OPS_ORG_ROLES, or, only in development with INKWELL_OPS_LOOPBACK=true, a request from
loopback. Everything else is 403 OPS_FORBIDDEN, including a token the auth service refused.
"""

import asyncio
import datetime as dt
import html
import ipaddress
import json
import time
from typing import Annotated, Any

import grpc
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from gateway.auth import AuthenticatedUser, token_from_request
from gateway.errors import ApiError
from gateway.ops_tracker import live_tracker, tracker_html
from gateway.state import GatewayState
from inkwell.index.v1 import index_service_pb2 as index_pb
from inkwell.index.v1 import index_service_pb2_grpc as index_grpc
from inkwell.models.v1 import models_service_pb2 as models_pb
from inkwell.models.v1 import models_service_pb2_grpc as models_grpc
from libs.doctor.gather import Gathered, Target, gather
from libs.runtime.client import call_timeout
from libs.runtime.logs import SIGNATURES, recent_lines
from libs.runtime.reasons import CATALOG

router = APIRouter(tags=["ops"])
DOCTOR_TTL_S = 10.0
DOCTOR_TIMEOUT_S = 10.0
DOCTOR_SERVICES = ("auth", "llm", "index")
_doctor_cache: dict[str, Any] = {}

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2330;background:#f6f7f9}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.muted{color:#687083} table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0001}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #eceef2;vertical-align:top} th{background:#fafbfc}
.ok{color:#137333;font-weight:600}.warn{color:#b06000;font-weight:600}.bad{color:#c5221f;font-weight:600}
.bar{background:#e8eaed;border-radius:4px;width:160px;height:10px;display:inline-block;vertical-align:middle}
.bar>span{display:block;height:10px;border-radius:4px;background:#1a73e8}
code{background:#eef0f3;padding:1px 4px;border-radius:3px}
"""


def _from_loopback(request: Request, state: GatewayState) -> bool:
    settings = state.settings
    if not settings.ops_loopback or settings.is_production or request.client is None:
        return False
    try:
        return ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


async def require_operator(request: Request) -> AuthenticatedUser | None:
    """The operator (None: anonymous loopback in development), or 403 OPS_FORBIDDEN; an auth outage
    stays a 503. The user's identity token is what the page's Diagnose calls carry."""
    state = GatewayState.of(request)
    signed_in = token_from_request(request) is not None
    if _from_loopback(request, state):
        if not signed_in:
            return None
        try:
            return await state.authenticator(request)
        except ApiError as error:
            if error.status != 401:
                raise
            return None
    if not signed_in:
        raise ApiError(403, "OPS_FORBIDDEN", "operator routes need a signed-in operator (INKWELL_OPS_USERS)")
    try:
        user = await state.authenticator(request)
    except ApiError as error:
        if error.status != 401:
            raise
        raise ApiError(
            403,
            "OPS_FORBIDDEN",
            f"operator routes need a valid operator session; the token was refused ({error.reason})",
            details={"metadata": {"authReason": error.reason}},
        ) from None
    if not state.settings.ops_access.admits(user.principal):
        raise ApiError(
            403,
            "OPS_FORBIDDEN",
            "this user is not an operator: add its user id to INKWELL_OPS_USERS "
            "or its organization and role to INKWELL_OPS_ORG_ROLES",
        )
    return user


def _cls(status: str) -> str:
    return {
        "SERVING": "ok",
        "PASS": "ok",
        "READY": "ok",
        "WARN": "warn",
        "NOT_SERVING": "warn",
        "LOADING_MODEL": "warn",
        "DEGRADED": "warn",
        "DOWNLOADING": "warn",
    }.get(status, "bad")


def _e(value: Any) -> str:
    return html.escape(str(value))


async def _models(state: GatewayState, name: str) -> list[models_pb.ModelStatus]:
    backend = state.backends[name]
    try:
        reply = await models_grpc.ModelsServiceStub(backend.channel).ListModels(
            models_pb.ListModelsRequest(), timeout=call_timeout(2.0)
        )
    except grpc.aio.AioRpcError:
        return []
    return list(reply.models)


async def _index(state: GatewayState) -> index_pb.Readiness | None:
    try:
        reply = await index_grpc.IndexServiceStub(state.backends["index"].channel).GetReadiness(
            index_pb.GetReadinessRequest(), timeout=call_timeout(2.0)
        )
    except grpc.aio.AioRpcError:
        return None
    return reply.readiness


async def _doctor(state: GatewayState, internal_token: str | None) -> Gathered:
    """Each service's own Diagnose answer (cached briefly: one gather serves a burst of page loads).
    A service that does not answer is a FAIL row (libs.doctor.gather), never a missing one."""
    cached = _doctor_cache.get("gathered")
    if cached is not None and _doctor_cache["at"] + DOCTOR_TTL_S > time.monotonic():
        return cached  # type: ignore[no-any-return,unused-ignore]
    targets = [
        Target(name, state.backends[name].address, state.backends[name].channel, state.backends[name].service_name)
        for name in DOCTOR_SERVICES
    ]
    gathered = await gather(targets, internal_token, DOCTOR_TIMEOUT_S)
    if internal_token:  # an answer without identity is only failure rows: do not keep it for others
        _doctor_cache.update(at=time.monotonic(), gathered=gathered)
    return gathered


def _recent_warnings(gathered: Gathered) -> list[str]:
    parts = [
        "<h2>Recent warnings per service, last hour</h2><table><tr><th>Service</th><th>Lines</th><th>Latest</th></tr>"
    ]
    for service, lines in gathered.log_lines.items():
        latest = ""
        if lines:
            try:
                last = json.loads(lines[-1])
                latest = f"{last.get('ts', '')} {last.get('reason', '')} {str(last.get('event', ''))[:160]}"
            except ValueError:
                latest = "(not a JSON line)"
        parts.append(f"<tr><td>{_e(service)}</td><td>{len(lines)}</td><td>{_e(latest)}</td></tr>")
    parts.append("</table>")
    return parts


def _rca_tracker(gathered: Gathered) -> str:
    """The RCA tracker of the last hour (gateway/ops_tracker.py): every service's recent lines from
    its Diagnose reply plus the gateway's own."""
    own, truncated = recent_lines(3600.0)
    return tracker_html(live_tracker(gathered.log_lines, own), truncated=["gateway"] if truncated else [])


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%H:%M:%S")


@router.get(
    "/ops",
    response_class=HTMLResponse,
    summary="Operator page (INKWELL_OPS_USERS / INKWELL_OPS_ORG_ROLES)",
)
async def ops(request: Request, user: Annotated[AuthenticatedUser | None, Depends(require_operator)]) -> HTMLResponse:
    state = GatewayState.of(request)
    readiness, llm_models, index_models, index, gathered = await asyncio.gather(
        state.backends.readiness(state.settings.readiness_timeout_s),
        _models(state, "llm"),
        _models(state, "index"),
        _index(state),
        _doctor(state, user.internal_token if user is not None else None),
    )
    checks = gathered.checks
    parts = [
        f"<!doctype html><html><head><meta charset=utf-8><title>Inkwell ops</title><style>{STYLE}</style>"
        f"</head><body><h1>Inkwell operations</h1><div class=muted>{_e(state.settings.env.value)} · "
        f"{dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC</div>"
    ]
    parts.append("<h2>Services</h2><table><tr><th>Service</th><th>Readiness</th></tr>")
    parts.append("<tr><td>gateway</td><td class=ok>SERVING</td></tr>")
    for name, status in readiness.items():
        parts.append(f"<tr><td>{_e(name)}</td><td class={_cls(status)}>{_e(status)}</td></tr>")
    parts.append("</table>")
    parts.append("<h2>Index</h2>")
    if index is None:
        parts.append("<p class=bad>The index service did not answer.</p>")
    else:
        state_name = index_pb.ReadinessState.Name(index.state).removeprefix("READINESS_STATE_")
        oldest = (
            f", oldest queued {_e(index.oldest_queued_at.ToJsonString())}" if index.HasField("oldest_queued_at") else ""
        )
        parts.append(
            f"<p>State <span class={_cls(state_name)}>{_e(state_name)}</span>"
            f"{' (' + _e(index.reason) + ')' if index.reason else ''} · model <code>{_e(index.model)}</code>"
            f" · queue depth <b>{index.queued_jobs}</b>{oldest}</p>"
        )
    parts.append("<h2>Index outbox</h2>")
    try:
        outbox = await state.outbox_store.stats()
    except Exception as exc:  # the page must render even when the database is down
        parts.append(f"<p class=bad>The workflow database did not answer ({_e(type(exc).__name__)}).</p>")
    else:
        age = (dt.datetime.now(dt.UTC) - outbox.oldest_pending).total_seconds() if outbox.oldest_pending else 0.0
        parts.append(
            f"<p>Waiting <b id=outbox-depth>{outbox.pending}</b> · oldest <b id=outbox-oldest-age>{age:.0f} s</b>"
            f" · failed <b id=outbox-failed class={'bad' if outbox.failed else 'ok'}>{outbox.failed}</b></p>"
        )
        if outbox.failures:
            parts.append("<table><tr><th>Row</th><th>Reason</th><th>Message</th><th>Queued</th></tr>")
            for row_id, reason, message, created in outbox.failures:
                parts.append(
                    f"<tr><td>{row_id}</td><td><code>{_e(reason)}</code></td><td>{_e(message[:200])}</td>"
                    f"<td>{_e(created.strftime('%Y-%m-%d %H:%M:%S'))}</td></tr>"
                )
            parts.append("</table>")
    parts.append(
        "<h2>Models</h2><table><tr><th>Service</th><th>Model</th><th>Roles</th><th>State</th>"
        "<th>Progress</th><th>RAM</th><th>Reason</th></tr>"
    )
    for service, models in (("llm", llm_models), ("index", index_models)):
        for m in models:
            if m.kind != models_pb.MODEL_KIND_LOCAL:
                continue
            state_name = models_pb.DownloadState.Name(m.download_state).removeprefix("DOWNLOAD_STATE_")
            percent = 100 * m.bytes_done / m.bytes_total if m.bytes_total else (100 if state_name == "READY" else 0)
            parts.append(
                f"<tr><td>{service}</td><td><code>{_e(m.model_id)}</code></td><td>{_e(','.join(m.roles))}</td>"
                f"<td class={_cls(state_name)}>{_e(state_name)}</td><td><span class=bar><span style='width:"
                f"{percent:.0f}%'></span></span> {percent:.0f}%</td><td>{m.ram_estimate_bytes / 1024**3:.1f} GiB"
                f"</td><td>{_e(m.reason)} {_e(m.message)[:120]}</td></tr>"
            )
    parts.append("</table>")
    parts.append(
        "<h2>Doctor</h2><p class=muted>Each service's own checks (Diagnose), plus whether it answers and its clock."
        "</p><table><tr><th>Result</th><th>Check</th><th>Code</th><th>Cause</th><th>Fix</th></tr>"
    )
    for c in checks:
        code = f"<code>{_e(c.reason)}</code>" if c.reason and c.status != "PASS" else ""
        parts.append(
            f"<tr><td class={_cls(c.status)}>{c.status}</td><td>{_e(c.area)}/{_e(c.name)}</td>"
            f"<td>{code}</td><td>{_e(c.cause)}</td><td>{_e(c.fix) if c.status != 'PASS' else ''}</td></tr>"
        )
    parts.append("</table>")
    parts += _recent_warnings(gathered)
    parts.append(_rca_tracker(gathered))
    parts.append(
        "<h2>Top error signatures, last hour</h2><table><tr><th>Subsystem</th><th>Reason</th><th>Where"
        "</th><th>Count</th><th>First / last seen</th><th>Remedy</th></tr>"
    )
    signatures = SIGNATURES.top()
    for s in sorted(signatures, key=lambda s: CATALOG[s.reason].subsystem if s.reason in CATALOG else s.subsystem):
        entry = CATALOG.get(s.reason)
        parts.append(
            f"<tr><td>{_e(entry.subsystem if entry else s.subsystem)}</td><td><code>{_e(s.reason)}</code></td>"
            f"<td>{_e(s.where)}</td><td>{s.count}</td><td>{_when(s.first_seen)} / {_when(s.last_seen)}</td>"
            f"<td>{_e(entry.remedy if entry else '')}</td></tr>"
        )
    if not signatures:
        parts.append("<tr><td colspan=6 class=muted>No warnings or errors in the last hour.</td></tr>")
    parts.append("</table></body></html>")
    return HTMLResponse("".join(parts))
