"""The LLM service over real gRPC, against a fake Hugging Face router on loopback (real HTTP,
OpenAI wire format, the real openai client), and the real local loading/generation code."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inkwell.llm.v1 import llm_service_pb2 as pb
from inkwell.llm.v1 import llm_service_pb2_grpc as pb_grpc
from libs.runtime.errors import from_rpc_error
from libs.runtime.settings import load
from services.auth.dev_issuer import DevIssuer
from services.llm.main import start_llm
from services.llm.readiness import assess
from services.llm.service import SERVICE_NAME
from services.llm.settings import LlmSettings
from tests.support.fake_router import FakeRouter, error, ok
from tests.support.grpc_errors import single_error_info

QWEN72 = "Qwen/Qwen2.5-72B-Instruct"
LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"
SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "minutes": {"type": "integer", "minimum": 1}},
    "required": ["title", "minutes"],
    "additionalProperties": False,
}
VALID = {"title": "Write the launch post", "minutes": 45}
MESSAGES = [pb.Message(role=pb.ROLE_USER, content="Plan one task for today as JSON.")]


@pytest.fixture
def router() -> Any:
    fake = FakeRouter(catalog={QWEN72: {"structured": True}, LLAMA8: {"structured": True}}).start()
    fake.default = {QWEN72: ok(VALID), LLAMA8: ok(VALID)}
    yield fake
    fake.stop()


class Llm:
    def __init__(self, running: Any, channel: grpc.aio.Channel, token: str) -> None:
        self.running = running
        self.channel = channel
        self.stub = pb_grpc.LlmServiceStub(channel)
        self.md = [("authorization", f"Bearer {token}")]

    async def structured(self, timeout: float = 20, **fields: Any) -> pb.GenerateStructuredResponse:
        fields.setdefault("messages", MESSAGES)
        fields.setdefault("json_schema", json.dumps(SCHEMA))
        fields.setdefault("criticality", pb.CRITICALITY_CRITICAL)
        return await self.stub.GenerateStructured(
            pb.GenerateStructuredRequest(**fields), metadata=self.md, timeout=timeout
        )

    async def refusal(self, timeout: float = 20, **fields: Any) -> tuple[grpc.aio.AioRpcError, list[dict[str, Any]]]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await self.structured(timeout=timeout, **fields)
        info = single_error_info(caught.value)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE and info.reason == "ALL_PROVIDERS_FAILED"
        return caught.value, json.loads(info.metadata["attempts"])


@pytest.fixture
async def start(start_auth_service: Any, tmp_path: Path) -> AsyncIterator[Any]:
    auth = await start_auth_service(INKWELL_ENV="development")
    token = (
        await auth.stub.VerifySession(
            __import__("inkwell.auth.v1.auth_service_pb2", fromlist=["x"]).VerifySessionRequest(
                token=DevIssuer(tmp_path / "data").mint("alice")
            ),
            timeout=5,
        )
    ).internal_token
    started: list[tuple[Any, grpc.aio.Channel]] = []

    async def go(base_url: str, wait_preflight: bool = True, **env: Any) -> Llm:
        settings = load(
            LlmSettings,
            **{
                "INKWELL_LLM_PORT": 0,
                "INKWELL_AUTH_ADDR": f"127.0.0.1:{auth.running.port}",
                "INKWELL_DATA_DIR": str(tmp_path / "data"),
                "INKWELL_MODEL_CACHE": str(tmp_path / "hf"),
                "HF_HUB_OFFLINE": "1",
                "HF_TOKEN": "hf_service_token",
                "INKWELL_HF_BASE_URL": base_url,
                "INKWELL_TORCH_THREADS": 1,
                "INKWELL_PACKAGED_MODELS": "false",  # the packaged SmolLM2 has its own test module
                **env,
            },
        )
        running = await start_llm(settings)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        started.append((running, channel))
        if wait_preflight:
            for _ in range(100):
                if all(r.checked_at or not r.api_key for r in running.router.routes.values()):
                    break
                await __import__("asyncio").sleep(0.02)
        return Llm(running, channel, token)

    yield go
    for running, channel in started:
        await channel.close()
        await running.stop()


async def test_healthy_router_gives_schema_valid_json_with_provenance(start: Any, router: FakeRouter) -> None:
    llm = await start(f"{router.url}/v1")
    reply = await llm.structured(purpose="workflow_plan")
    assert json.loads(reply.json) == VALID and not reply.degraded
    p = reply.provenance
    assert (p.provider, p.requested_model, p.served_model, p.served_by) == ("huggingface", QWEN72, QWEN72, "novita")
    assert p.route == f"{router.url}/v1" and p.output_stage == pb.OUTPUT_STAGE_NATIVE_SCHEMA
    assert [(a.outcome, a.shape) for a in p.attempts] == [(pb.ATTEMPT_OUTCOME_OK, pb.REQUEST_SHAPE_JSON_SCHEMA)]
    assert p.attempts[0].latency.ToNanoseconds() > 0
    assert reply.usage.total_tokens == 19
    assert router.chat_requests()[0]["response_format"] == "json_schema"
    assert router.chat_requests()[0]["authorization"] == "Bearer hf_service_token"


async def test_dead_route_is_named_and_never_called(start: Any, router: FakeRouter) -> None:
    llm = await start(f"{router.url}/hf/v1")
    error_, attempts = await llm.refusal()
    remote = [a for a in attempts if a["provider"] == "huggingface"]
    assert remote and all(a["error_class"] == "ROUTE_NOT_FOUND" and a["outcome"] == "skipped" for a in remote)
    assert f"{router.url}/hf/v1" in remote[0]["detail"]
    assert from_rpc_error(error_).metadata["firstCause"] == "ROUTE_NOT_FOUND"
    assert router.hits["/hf/v1/chat/completions"] == 0 and router.hits["/hf/v1/models"] == 1
    degraded = await llm.structured(criticality=pb.CRITICALITY_BEST_EFFORT)
    assert degraded.degraded and degraded.json == ""
    assert any(r.startswith("ROUTE_NOT_FOUND") for r in degraded.degraded_reasons)


async def test_model_missing_from_catalog_is_skipped_without_a_call(start: Any, router: FakeRouter) -> None:
    del router.catalog[QWEN72]
    llm = await start(f"{router.url}/v1")
    reply = await llm.structured()
    assert reply.provenance.requested_model == LLAMA8
    first = reply.provenance.attempts[0]
    assert (first.model, first.outcome, first.error_class) == (
        QWEN72,
        pb.ATTEMPT_OUTCOME_SKIPPED,
        pb.ERROR_CLASS_MODEL_UNAVAILABLE,
    )
    assert router.chat_requests(QWEN72) == []


async def test_not_supported_by_any_provider_is_cached_and_never_retried(start: Any, router: FakeRouter) -> None:
    router.script(
        QWEN72,
        error(
            400, "The requested model 'Qwen/Qwen2.5-72B-Instruct' is not supported by any provider you have enabled."
        ),
    )
    llm = await start(f"{router.url}/v1")
    first = await llm.structured()
    assert first.provenance.requested_model == LLAMA8
    assert first.provenance.attempts[0].error_class == pb.ERROR_CLASS_MODEL_UNAVAILABLE
    second = await llm.structured()
    assert second.provenance.attempts[0].outcome == pb.ATTEMPT_OUTCOME_SKIPPED
    assert len(router.chat_requests(QWEN72)) == 1


async def test_a_404_is_never_retried(start: Any, router: FakeRouter) -> None:
    router.script(QWEN72, error(404, "Not Found"))
    llm = await start(f"{router.url}/v1")
    for _ in range(3):
        reply = await llm.structured()
        assert reply.provenance.requested_model == LLAMA8
    assert len(router.chat_requests(QWEN72)) == 1


async def test_response_format_refusal_steps_down_and_is_remembered(start: Any, router: FakeRouter) -> None:
    router.no_schema.add(QWEN72)
    llm = await start(f"{router.url}/v1")
    reply = await llm.structured()
    assert reply.provenance.requested_model == QWEN72
    assert reply.provenance.output_stage == pb.OUTPUT_STAGE_JSON_OBJECT
    assert [(a.shape, a.error_class) for a in reply.provenance.attempts] == [
        (pb.REQUEST_SHAPE_JSON_SCHEMA, pb.ERROR_CLASS_CAPABILITY),
        (pb.REQUEST_SHAPE_JSON_OBJECT, pb.ERROR_CLASS_UNSPECIFIED),
    ]
    again = await llm.structured()
    assert [a.shape for a in again.provenance.attempts] == [pb.REQUEST_SHAPE_JSON_OBJECT]
    assert [r["response_format"] for r in router.chat_requests(QWEN72)] == ["json_schema", "json_object", "json_object"]


async def test_catalog_without_structured_output_uses_the_prompt(start: Any, router: FakeRouter) -> None:
    router.catalog[QWEN72] = {"structured": False}
    llm = await start(f"{router.url}/v1")
    reply = await llm.structured()
    assert reply.provenance.output_stage == pb.OUTPUT_STAGE_PROMPTED
    request = router.chat_requests(QWEN72)[0]
    assert request["response_format"] is None and "JSON Schema" in request["messages"][0]["content"]


async def test_429_retry_after_is_honored(start: Any, router: FakeRouter) -> None:
    router.script(QWEN72, error(429, "slow down", {"Retry-After": "1"}), ok(VALID))
    llm = await start(f"{router.url}/v1")
    reply = await llm.structured()
    assert reply.provenance.requested_model == QWEN72
    calls = router.chat_requests(QWEN72)
    assert len(calls) == 2 and calls[1]["at"] - calls[0]["at"] >= 0.95
    assert [a.http_status for a in reply.provenance.attempts] == [429, 0]


async def test_intermittent_500s_are_retried_on_the_same_target(start: Any, router: FakeRouter) -> None:
    router.script(QWEN72, error(500), error(503), ok(VALID))
    llm = await start(f"{router.url}/v1")
    reply = await llm.structured()
    assert reply.provenance.requested_model == QWEN72 and len(router.chat_requests(QWEN72)) == 3


async def test_no_call_outlives_its_deadline(start: Any, router: FakeRouter) -> None:
    """The server, not only the client, gives up at the caller's deadline: every upstream call it
    started is hung up by then, and none starts after it."""
    router.default = {QWEN72: {**ok(VALID), "sleep": 5}, LLAMA8: {**ok(VALID), "sleep": 5}}
    llm = await start(f"{router.url}/v1")
    started = time.monotonic()
    deadline = started + 1.5
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await llm.structured(timeout=1.5)
    elapsed = time.monotonic() - started
    assert elapsed < 1.6
    assert caught.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    if caught.value.code() == grpc.StatusCode.UNAVAILABLE:
        assert single_error_info(caught.value).reason == "ALL_PROVIDERS_FAILED"
    calls = router.chat_requests()
    assert calls, "the slow upstream was never called"
    hung_up = await asyncio.to_thread(router.wait_cancelled, len(calls), 3.0)
    assert hung_up and len(router.cancelled) == len(router.chat_requests()), "an upstream call outlived the deadline"
    assert all(c["closed"] <= deadline + 0.3 for c in router.cancelled), router.cancelled
    assert all(c["at"] <= deadline for c in router.chat_requests())


async def test_readiness_is_serving_only_while_a_candidate_can_answer(start: Any, router: FakeRouter) -> None:
    healthy = await start(f"{router.url}/v1")
    assert await wait_health(healthy, health_pb2.HealthCheckResponse.SERVING)
    # No HF token and no local model downloaded: no candidate of any purpose can answer.
    dead = await start(f"{router.url}/v1", HF_TOKEN="")
    assert await wait_health(dead, health_pb2.HealthCheckResponse.NOT_SERVING)
    found = assess(dead.running.router, dead.running.registry)
    assert not found.ready and "NOT_CONFIGURED" in found.detail and not found.answerable
    # A wrong base URL (every path 404) is as dead.
    wrong = await start(f"{router.url}/hf/v1")
    assert await wait_health(wrong, health_pb2.HealthCheckResponse.NOT_SERVING)


async def wait_health(llm: Llm, want: int, timeout_s: float = 8.0) -> bool:
    """True once the LLM service's health says `want`; False when it never does in time."""
    stub = health_pb2_grpc.HealthStub(llm.channel)
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=2)
        if reply.status == want:
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.parametrize(
    ("reply", "stage"),
    [
        ("```json\n" + json.dumps(VALID) + "\n```", pb.OUTPUT_STAGE_REPAIRED),
        ('{"title": "Write the launch post", "minutes": 45', pb.OUTPUT_STAGE_REPAIRED),
    ],
)
async def test_fenced_and_truncated_json_are_repaired(start: Any, router: FakeRouter, reply: str, stage: int) -> None:
    router.script(QWEN72, ok(reply))
    llm = await start(f"{router.url}/v1")
    response = await llm.structured()
    assert json.loads(response.json) == VALID and response.provenance.output_stage == stage


async def test_schema_invalid_output_is_reasked_once(start: Any, router: FakeRouter) -> None:
    router.script(QWEN72, ok({"title": "x", "minutes": "soon"}), ok(VALID))
    llm = await start(f"{router.url}/v1")
    reply = await llm.structured()
    assert reply.provenance.output_stage == pb.OUTPUT_STAGE_REASKED and reply.provenance.requested_model == QWEN72
    reask = router.chat_requests(QWEN72)[1]["messages"][-1]["content"]
    assert "minutes" in reask and "not valid" in reask


async def test_invalid_output_twice_moves_to_the_next_candidate(start: Any, router: FakeRouter) -> None:
    router.script(QWEN72, ok({"nope": 1}), ok("still not it"))
    llm = await start(f"{router.url}/v1")
    reply = await llm.structured()
    assert reply.provenance.requested_model == LLAMA8
    assert [a.error_class for a in reply.provenance.attempts][:2] == [pb.ERROR_CLASS_OUTPUT] * 2


async def test_per_request_api_key_never_touches_the_environment(start: Any, router: FakeRouter) -> None:
    llm = await start(f"{router.url}/v1")
    before = dict(os.environ)
    await llm.structured(api_key="hf_tenant_key")
    assert router.chat_requests()[-1]["authorization"] == "Bearer hf_tenant_key"
    assert dict(os.environ) == before


async def test_without_hf_token_the_provider_is_not_configured(
    start: Any, router: FakeRouter, caplog: pytest.LogCaptureFixture
) -> None:
    llm = await start(f"{router.url}/v1", HF_TOKEN="")
    _, attempts = await llm.refusal()
    assert {a["error_class"] for a in attempts if a["provider"] == "huggingface"} == {"NOT_CONFIGURED"}
    assert router.requests == []
    notes = [r for r in caplog.records if getattr(r, "reason", "") == "PROVIDER_NOT_CONFIGURED"]
    assert len(notes) == 1


async def test_bad_schema_and_messages_are_refused_with_a_field(start: Any, router: FakeRouter) -> None:
    llm = await start(f"{router.url}/v1")
    for fields in (
        {"json_schema": "{not json"},
        {"json_schema": '{"type": "nonsense"}'},
        {"messages": []},
        {"purpose": "nope"},
        {"messages": [pb.Message(role=pb.ROLE_UNSPECIFIED, content="x")]},
        {"messages": [pb.Message(role=99, content="x")]},
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await llm.structured(**fields)
        info = single_error_info(caught.value)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and info.reason == "REQUEST_INVALID"
        assert info.metadata["field"]


async def test_list_models_reports_availability(start: Any, router: FakeRouter) -> None:
    del router.catalog[LLAMA8]
    llm = await start(f"{router.url}/v1")
    listing = await llm.stub.ListModels(pb.ListModelsRequest(), metadata=llm.md, timeout=5)
    states = {m.model: m.state for m in listing.remote}
    assert states == {QWEN72: pb.REMOTE_MODEL_STATE_AVAILABLE, LLAMA8: pb.REMOTE_MODEL_STATE_MODEL_UNAVAILABLE}
    assert {m.name for m in listing.local} == {"qwen2.5-0.5b-instruct", "tinyllama-1.1b-chat", "smollm2-135m-instruct"}


async def test_usage_is_recorded_per_user(start: Any, router: FakeRouter) -> None:
    llm = await start(f"{router.url}/v1")
    await llm.structured()
    await llm.structured()
    await llm.running.servicer.recorder.flush()
    rows = llm.running.usage.summary("dev:alice", 0, time.time() + 60)
    assert rows and rows[0]["provider"] == "huggingface" and rows[0]["calls"] == 2
    assert rows[0]["prompt_tokens"] == 24 and rows[0]["outcome"] == "ok"


# --- the local model -------------------------------------------------------------------------------


def install_tiny_qwen(cache: Path, tiny_qwen: Path) -> None:
    snapshot = cache / "models--Qwen--Qwen2.5-0.5B-Instruct" / "snapshots" / "7ae557604adf67be50417f59c2c2f167def9a775"
    shutil.copytree(tiny_qwen, snapshot)


async def test_local_model_runs_and_its_gibberish_is_refused_honestly(
    start: Any, router: FakeRouter, tiny_qwen: Path, tmp_path: Path
) -> None:
    install_tiny_qwen(tmp_path / "hf", tiny_qwen)
    llm = await start(f"{router.url}/hf/v1")  # remote route dead: only the local model can answer
    text = await llm.stub.Generate(
        pb.GenerateRequest(messages=MESSAGES, purpose="agent", max_tokens=8, criticality=pb.CRITICALITY_CRITICAL),
        metadata=llm.md,
        timeout=60,
    )
    assert text.provenance.provider == "local" and text.provenance.served_by == "local"
    assert text.provenance.served_model == "Qwen/Qwen2.5-0.5B-Instruct" and text.usage.completion_tokens > 0
    # uniqueItems is not something the grammar enforces: the schema goes in the prompt, labelled.
    unenforceable = {"type": "array", "items": {"type": "integer"}, "minItems": 3, "uniqueItems": True}
    _, attempts = await llm.refusal(timeout=60, purpose="agent", max_tokens=12, json_schema=json.dumps(unenforceable))
    local = [a for a in attempts if a["provider"] == "local"]
    assert local and local[0]["model"] == "qwen2.5-0.5b-instruct"
    assert [a["error_class"] for a in local] == ["OUTPUT", "OUTPUT"]  # first try, then the one re-ask
    assert local[0]["shape"] == "prompted" and "grammar: the grammar cannot enforce" in local[0]["detail"]


async def test_local_structured_output_is_constrained_and_valid(
    start: Any, router: FakeRouter, tiny_qwen: Path, tmp_path: Path
) -> None:
    install_tiny_qwen(tmp_path / "hf", tiny_qwen)
    llm = await start(f"{router.url}/hf/v1")  # remote route dead: only the local (noise) model answers
    for temperature in (0.0, 1.0):
        reply = await llm.structured(timeout=60, purpose="agent", max_tokens=80, temperature=temperature)
        p = reply.provenance
        assert p.output_stage == pb.OUTPUT_STAGE_CONSTRAINED and p.provider == "local"
        assert p.served_model == "Qwen/Qwen2.5-0.5B-Instruct" and p.attempts[-1].shape == pb.REQUEST_SHAPE_CONSTRAINED
        value = json.loads(reply.json)
        assert set(value) == {"title", "minutes"} and isinstance(value["minutes"], int) and value["minutes"] >= 1


async def test_agents_fall_back_to_remote_when_no_local_model_is_ready(start: Any, router: FakeRouter) -> None:
    llm = await start(f"{router.url}/v1")
    reply = await llm.structured(purpose="agent")
    assert reply.provenance.provider == "huggingface"
    assert reply.provenance.attempts[0].error_class == pb.ERROR_CLASS_NO_LOCAL_MODEL


async def test_get_usage_returns_the_callers_own_records(start: Any, router: FakeRouter) -> None:
    llm = await start(f"{router.url}/v1")
    await llm.structured()
    usage = await llm.stub.GetUsage(pb.GetUsageRequest(), metadata=llm.md, timeout=5)
    assert [(r.provider, r.model, r.outcome, r.calls) for r in usage.rows] == [
        ("huggingface", QWEN72, pb.USAGE_OUTCOME_OK, 1)
    ]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await llm.stub.GetUsage(pb.GetUsageRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
