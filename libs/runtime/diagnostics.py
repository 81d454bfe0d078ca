"""DiagnosticsService: the doctor runs where the state is.

Every gRPC service registers this one servicer with its own checks (services/<svc>/diagnose.py).
The servicer adds what every service has: its clock, its instance and its recent WARNING-or-worse
log lines (libs.runtime.logs), and turns a crashing or hanging check into a finding instead of an
empty answer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping

import grpc
from google.protobuf import timestamp_pb2

from inkwell.diagnostics.v1 import diagnostics_service_pb2 as pb
from inkwell.diagnostics.v1 import diagnostics_service_pb2_grpc as pb_grpc
from libs.runtime import logs
from libs.runtime.identity import InternalTokenVerifier, bearer_from_metadata
from libs.runtime.reasons import CATALOG

log = logging.getLogger("inkwell.diagnostics")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["DiagnosticsService"].full_name
LOG_WINDOW_S = 3600.0
DEFAULT_BUDGET_S = 10.0
Check = Callable[[], Awaitable[list[pb.Finding]]]
# Named groups of checks; they run at once, and one that hangs or crashes costs only its own rows.
Checks = Mapping[str, Check]

STATUS = {"PASS": pb.CHECK_STATUS_PASS, "WARN": pb.CHECK_STATUS_WARN, "FAIL": pb.CHECK_STATUS_FAIL}


def finding(area: str, name: str, status: str, cause: str, reason: str = "", fix: str = "") -> pb.Finding:
    """One result; class and (unless given) fix come from the reason's catalog entry."""
    entry = CATALOG.get(reason)
    return pb.Finding(
        area=area,
        name=name,
        status=STATUS[status],
        reason=reason if status != "PASS" else "",
        reason_class=pb.ReasonClass.Value(f"REASON_CLASS_{entry.klass.value}")
        if entry and status != "PASS"
        else pb.REASON_CLASS_UNSPECIFIED,
        cause=cause[:500],
        fix=(fix or (entry.remedy if entry else "")) if status != "PASS" else "",
    )


def _instance() -> str:
    return f"{socket.gethostname()}/{os.getpid()}"


class DiagnosticsServicer(pb_grpc.DiagnosticsServiceServicer):
    """`verifier` is for a server without the identity interceptor (auth): Diagnose still needs an
    internal identity token there, because the reply carries configuration detail and log lines."""

    def __init__(self, service: str, area: str, checks: Checks, verifier: InternalTokenVerifier | None = None) -> None:
        self.service = service
        self.area = area
        self.checks = checks
        self.verifier = verifier

    async def _run_group(self, name: str, check: Check, budget_s: float) -> list[pb.Finding]:
        try:
            return await asyncio.wait_for(check(), timeout=budget_s)
        except TimeoutError:
            return [
                finding(
                    self.area,
                    name,
                    "FAIL",
                    f"the {name} checks did not finish within {budget_s:.1f} s",
                    "DIAGNOSE_INCOMPLETE",
                )
            ]
        except Exception as exc:  # a crashing check is a defect, reported like any other result
            log.exception("a diagnose check crashed", extra={"reason": "INTERNAL_DEFECT", "check": name})
            return [finding(self.area, name, "FAIL", f"the check crashed: {type(exc).__name__}", "INTERNAL_DEFECT")]

    async def _run_checks(self, budget_s: float) -> list[pb.Finding]:
        groups = await asyncio.gather(*(self._run_group(n, c, budget_s) for n, c in self.checks.items()))
        return [f for group in groups for f in group]

    async def Diagnose(self, request: pb.DiagnoseRequest, context: grpc.aio.ServicerContext) -> pb.DiagnoseResponse:
        if self.verifier is not None:
            await self.verifier.verify(bearer_from_metadata(context.invocation_metadata()))
        remaining = context.time_remaining()
        budget = DEFAULT_BUDGET_S if remaining is None else max(0.1, min(DEFAULT_BUDGET_S, remaining - 0.25))
        findings = await self._run_checks(budget)
        window = request.log_window.ToNanoseconds() / 1e9 if request.HasField("log_window") else 0.0
        lines, truncated = logs.recent_lines(min(window, LOG_WINDOW_S) if window > 0 else LOG_WINDOW_S)
        now = timestamp_pb2.Timestamp()
        now.FromNanoseconds(time.time_ns())
        return pb.DiagnoseResponse(
            service=self.service,
            instance=_instance(),
            now=now,
            findings=findings,
            recent_log_lines=lines,
            log_lines_truncated=truncated,
        )


def register(server: grpc.aio.Server, servicer: DiagnosticsServicer) -> None:
    pb_grpc.add_DiagnosticsServiceServicer_to_server(servicer, server)
