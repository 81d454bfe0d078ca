"""The doctor runs where the state is: each service answers Diagnose with its own checks and recent
warning lines; `inkwell doctor` gathers them and shows a service that does not answer as a FAIL row."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from inkwell.diagnostics.v1 import diagnostics_service_pb2 as pb
from inkwell.diagnostics.v1 import diagnostics_service_pb2_grpc as pb_grpc
from libs.runtime import logs
from libs.runtime.logs import RecentRecords
from tests.conftest import PUBLISHABLE_KEY
from tests.support.fake_clerk import FakeClerk, SigningKey
from tests.support.fake_router import FakeRouter
from tests.support.grpc_errors import single_error_info
from tests.support.processes import ROOT, clean_env, free_port
from tests.support.stack import Services

QWEN72 = "Qwen/Qwen2.5-72B-Instruct"


class Stack:
    """auth (a Clerk instance whose secret key is another instance's) and llm (the dead /hf/v1
    route); the index is deliberately not started."""

    def __init__(self, root: Path, signing_key: SigningKey, other_key: SigningKey) -> None:
        self.clerk = FakeClerk([signing_key], backend_keys=[other_key]).start()
        self.router = FakeRouter(catalog={QWEN72: {"structured": True}}).start()
        self.services = Services(
            root,
            CLERK_PUBLISHABLE_KEY=PUBLISHABLE_KEY,
            CLERK_SECRET_KEY=self.clerk.secret_key,
            CLERK_FRONTEND_API_URL=self.clerk.url,
            CLERK_API_URL=self.clerk.url,
        )
        self.services.start_auth()
        self.services.start_llm(f"{self.router.url}/hf/v1")
        self.llm_address = f"127.0.0.1:{self.services.llm_port}"

    def diagnose(self, address: str, token: bool = True) -> pb.DiagnoseResponse:
        metadata = self.services.metadata("ops") if token else None
        with grpc.insecure_channel(address) as channel:
            return pb_grpc.DiagnosticsServiceStub(channel).Diagnose(pb.DiagnoseRequest(), metadata=metadata, timeout=20)

    def doctor(self, *args: str, **env: Any) -> subprocess.CompletedProcess[str]:
        settings = {
            **self.services.env,
            "INKWELL_AUTH_ADDR": self.services.auth_address,
            "INKWELL_LLM_ADDR": self.llm_address,
            "INKWELL_INDEX_ADDR": f"127.0.0.1:{free_port()}",  # down
            "INKWELL_GATEWAY_URL": f"http://127.0.0.1:{free_port()}",  # down
            **env,
        }
        return subprocess.run(
            [sys.executable, "-m", "cli", "doctor", *args],
            cwd=ROOT,
            env=clean_env(**settings),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def stop(self) -> None:
        self.services.stop()
        self.clerk.stop()
        self.router.stop()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, signing_key: SigningKey, other_instance_key: SigningKey
) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("doctor"), signing_key, other_instance_key)
    yield s
    s.stop()


def by(response: pb.DiagnoseResponse, name: str) -> pb.Finding:
    (found,) = [f for f in response.findings if f.name == name]
    return found


def test_auth_diagnose_names_the_instance_mismatch_and_hands_over_its_warnings(stack: Stack) -> None:
    reply = stack.diagnose(stack.services.auth_address)
    assert reply.service == "inkwell.auth.v1.AuthService" and reply.instance
    assert abs(reply.now.ToNanoseconds() / 1e9 - time.time()) < 5
    mismatch = by(reply, "clerk instance mismatch")
    assert (mismatch.status, mismatch.reason) == (pb.CHECK_STATUS_FAIL, "CLERK_INSTANCE_MISMATCH")
    assert mismatch.reason_class == pb.REASON_CLASS_CONFIG and mismatch.fix
    assert "secret key and publishable key belong to different Clerk instances" in mismatch.cause
    assert by(reply, "JWKS reachable").status == pb.CHECK_STATUS_PASS
    assert by(reply, "clock").status == pb.CHECK_STATUS_PASS
    # The startup self-check logged the mismatch once; Diagnose hands that line over as written.
    lines = [json.loads(line) for line in reply.recent_log_lines]
    assert [line["reason"] for line in lines if line.get("reason") == "CLERK_INSTANCE_MISMATCH"] == [
        "CLERK_INSTANCE_MISMATCH"
    ]
    assert all(line["level"] in ("WARNING", "ERROR", "CRITICAL") for line in lines)


def test_llm_diagnose_names_the_dead_route(stack: Stack) -> None:
    reply = stack.diagnose(stack.llm_address)
    route = by(reply, "route huggingface")
    assert (route.status, route.reason) == (pb.CHECK_STATUS_FAIL, "ROUTE_NOT_FOUND")
    assert f"{stack.router.url}/hf/v1/models answered 404" in route.cause
    assert by(reply, "HF_TOKEN").status == pb.CHECK_STATUS_PASS
    assert any('"reason":"ROUTE_NOT_FOUND"' in line for line in reply.recent_log_lines)


@pytest.mark.parametrize("service", ["auth", "llm"])
def test_diagnose_needs_an_internal_identity(stack: Stack, service: str) -> None:
    address = stack.services.auth_address if service == "auth" else stack.llm_address
    with pytest.raises(grpc.RpcError) as caught:
        stack.diagnose(address, token=False)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    assert single_error_info(caught.value).reason == "IDENTITY_MISSING"


def test_doctor_gathers_and_a_service_that_is_down_is_a_fail_row(stack: Stack) -> None:
    result = stack.doctor("--json")
    assert result.returncode == 1, result.stderr
    checks = json.loads(result.stdout)["checks"]
    rows = {(c["area"], c["name"]): c for c in checks}
    assert rows["services", "auth"]["status"] == "PASS"
    # The llm's only route is dead and it has no local model: live, but honestly not ready.
    assert (rows["services", "llm"]["status"], rows["services", "llm"]["reason"]) == ("WARN", "BACKENDS_NOT_READY")
    down = rows["index", "diagnose"]
    assert (down["status"], down["reason"]) == ("FAIL", "DIAGNOSE_UNAVAILABLE") and "index" in down["cause"]
    assert rows["services", "index"]["reason"] == "BACKEND_UNAVAILABLE"
    assert rows["services", "gateway"]["status"] == "FAIL"
    assert rows["clerk", "clerk instance mismatch"]["service"] == "auth"
    assert rows["llm", "route huggingface"]["reason"] == "ROUTE_NOT_FOUND"
    assert rows["auth", "clock"]["status"] == "PASS"


def test_doctor_without_identity_says_so(stack: Stack) -> None:
    result = stack.doctor("--json", "--only", "llm", INKWELL_ENV="production", INKWELL_SESSION_TOKEN="")
    checks = json.loads(result.stdout)["checks"]
    rows = {(c["area"], c["name"]): c for c in checks}
    assert rows["doctor", "identity"]["reason"] == "IDENTITY_MISSING"
    assert rows["llm", "diagnose"]["reason"] == "IDENTITY_MISSING"


def test_text_report_separates_configuration_from_dependencies(stack: Stack) -> None:
    result = stack.doctor("--only", "llm")
    assert result.returncode == 1
    assert "FAIL  route huggingface" in result.stdout and "Configuration problems:" in result.stdout
    assert "fix: the provider's base URL is wrong" in result.stdout


def test_recent_records_are_bounded_and_windowed() -> None:
    ring = RecentRecords(max_records=3)
    now = time.time()
    for age, event in ((7200, "too old"), (120, "a"), (60, "b"), (1, "c")):
        ring.add(now - age, json.dumps({"event": event}))
    lines, truncated = ring.lines(3600)
    assert [json.loads(x)["event"] for x in lines] == ["a", "b", "c"] and not truncated
    ring.add(now, json.dumps({"event": "d"}))  # evicts "a", which is inside the window
    lines, truncated = ring.lines(3600)
    assert [json.loads(x)["event"] for x in lines] == ["b", "c", "d"] and truncated
    assert [json.loads(x)["event"] for x in ring.lines(30)[0]] == ["c", "d"]


def test_warning_lines_are_kept_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    logs.RECENT.clear()
    try:
        logs.configure("test")
        logging.getLogger("inkwell.test").info("not kept")
        logging.getLogger("inkwell.test").warning("kept", extra={"reason": "TRANSIENT", "route": "r1"})
        written = [line for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    records = logs.recent_records(60)
    assert [r["event"] for r in records] == ["kept"] and records[0]["reason"] == "TRANSIENT"
    assert logs.recent_lines(60)[0] == [w for w in written if '"kept"' in w]


async def test_a_hanging_or_crashing_check_costs_only_its_own_rows() -> None:
    import asyncio

    from libs.runtime.diagnostics import DiagnosticsServicer, finding

    async def fine() -> list[pb.Finding]:
        return [finding("x", "fine", "PASS", "ok")]

    async def hangs() -> list[pb.Finding]:
        await asyncio.Event().wait()
        return []

    async def crashes() -> list[pb.Finding]:
        raise RuntimeError("boom")

    servicer = DiagnosticsServicer("svc", "x", {"fine": fine, "slow": hangs, "broken": crashes})
    rows = {f.name: f for f in await servicer._run_checks(0.2)}
    assert rows["fine"].status == pb.CHECK_STATUS_PASS
    assert (rows["slow"].status, rows["slow"].reason) == (pb.CHECK_STATUS_FAIL, "DIAGNOSE_INCOMPLETE")
    assert (rows["broken"].reason, rows["broken"].reason_class) == ("INTERNAL_DEFECT", pb.REASON_CLASS_DEFECT)
