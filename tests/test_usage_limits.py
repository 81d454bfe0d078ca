"""Plan limits enforced by the LLM service before a model is called (real gRPC, the fake Hugging
Face router on loopback, the real auth service), and the 429 the gateway turns the refusal into."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from gateway.errors import ApiError, error_response
from inkwell.auth.v1 import auth_service_pb2 as auth_pb
from inkwell.llm.v1 import llm_service_pb2 as pb
from inkwell.llm.v1 import llm_service_pb2_grpc as pb_grpc
from libs.config import config_file
from libs.runtime.errors import from_rpc_error
from libs.runtime.settings import load
from services.auth.dev_issuer import DevIssuer
from services.llm.main import start_llm
from services.llm.settings import LlmSettings
from tests.support.fake_router import FakeRouter, ok
from tests.support.grpc_errors import single_error_info

QWEN72 = "Qwen/Qwen2.5-72B-Instruct"
LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"
SCHEMA = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
MESSAGES = [pb.Message(role=pb.ROLE_USER, content="One task as JSON.")]


def plans_with(tmp_path: Path, **limits: float) -> Path:
    """The packaged plans file with the free plan's limits replaced by `limits` (others 0: unmetered)."""
    text = config_file("plans.toml").read_text()
    start = text.index("[plans.free.limits]")
    end = text.index("[plans.basic]")
    block = "[plans.free.limits]\n" + "".join(f"{k} = {v}\n" for k, v in limits.items()) + "\n"
    path = tmp_path / "plans.toml"
    path.write_text(text[:start] + block + text[end:])
    return path


@pytest.fixture
def router() -> Any:
    fake = FakeRouter(catalog={QWEN72: {"structured": True}, LLAMA8: {"structured": True}}).start()
    fake.default = {QWEN72: ok({"title": "x"}), LLAMA8: ok({"title": "x"})}
    yield fake
    fake.stop()


@pytest.fixture
async def llm(start_auth_service: Any, tmp_path: Path, router: FakeRouter) -> AsyncIterator[Any]:
    auth = await start_auth_service(INKWELL_ENV="development")
    token = (
        await auth.stub.VerifySession(
            auth_pb.VerifySessionRequest(token=DevIssuer(tmp_path / "data").mint("user_limits")), timeout=5
        )
    ).internal_token
    opened: list[Any] = []

    async def go(plans: Path) -> pb_grpc.LlmServiceStub:
        settings = load(
            LlmSettings,
            INKWELL_LLM_PORT=0,
            INKWELL_AUTH_ADDR=f"127.0.0.1:{auth.running.port}",
            INKWELL_DATA_DIR=str(tmp_path / "data"),
            INKWELL_MODEL_CACHE=str(tmp_path / "hf"),
            HF_HUB_OFFLINE="1",
            HF_TOKEN="hf_service_token",
            INKWELL_HF_BASE_URL=f"{router.url}/v1",
            INKWELL_TORCH_THREADS=1,
            INKWELL_PLANS_FILE=str(plans),
            INKWELL_PACKAGED_MODELS="false",  # remote candidates only: a packaged model would load for minutes
        )
        running = await start_llm(settings)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        opened.append((running, channel))
        for _ in range(200):
            if all(r.checked_at or not r.api_key for r in running.router.routes.values()):
                break
            await asyncio.sleep(0.02)
        return pb_grpc.LlmServiceStub(channel)

    go.md = [("authorization", f"Bearer {token}")]  # type: ignore[attr-defined]
    yield go
    for running, channel in opened:
        await channel.close()
        await running.stop()


async def call(stub: pb_grpc.LlmServiceStub, md: Any) -> pb.GenerateStructuredResponse:
    request = pb.GenerateStructuredRequest(
        messages=MESSAGES, json_schema=json.dumps(SCHEMA), criticality=pb.CRITICALITY_CRITICAL
    )
    reply: pb.GenerateStructuredResponse = await stub.GenerateStructured(request, metadata=md, timeout=20)
    return reply


async def test_calls_limit_refuses_before_the_model_is_called(llm: Any, tmp_path: Path, router: FakeRouter) -> None:
    stub = await llm(plans_with(tmp_path, ai_text_generation_calls=2))
    await call(stub, llm.md)
    await call(stub, llm.md)
    calls_before = len(router.chat_requests())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(stub, llm.md)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    info = single_error_info(caught.value)
    assert info.reason == "USAGE_LIMIT_REACHED"
    assert info.metadata["provider"] == "huggingface" and info.metadata["limitKey"] == "ai_text_generation_calls"
    assert (info.metadata["currentCalls"], info.metadata["limit"]) == ("2", "2")
    assert len(router.chat_requests()) == calls_before  # refused before any model was called

    # The gateway's answer, the frontend's way (docs/frontend-contract.md §1.4).
    response = error_response(ApiError.from_remote(from_rpc_error(caught.value), "llm"))
    body = json.loads(bytes(response.body))
    assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1
    detail = body["detail"]
    assert isinstance(detail["message"], str) and "limit" in detail["message"]
    assert isinstance(detail["error"], str) and detail["provider"] == "huggingface"
    assert (detail["current_calls"], detail["limit"]) == (2, 2)
    assert detail["usage_info"]["current_calls"] == 2 and detail["usage_info"]["limit"] == 2
    assert body["error"]["reason"] == "USAGE_LIMIT_REACHED"


async def test_provider_token_limit_skips_that_provider_only(llm: Any, tmp_path: Path, router: FakeRouter) -> None:
    stub = await llm(plans_with(tmp_path, mistral_tokens=19))  # one fake-router call uses 19 tokens
    await call(stub, llm.md)
    calls_before = len(router.chat_requests())
    try:  # huggingface is skipped; the local model answers if one is installed, else nothing does
        reply = await call(stub, llm.md)
        attempts = [
            {"provider": a.provider, "outcome": a.outcome, "error_class": a.error_class}
            for a in reply.provenance.attempts
        ]
        skipped = (pb.ATTEMPT_OUTCOME_SKIPPED, pb.ERROR_CLASS_USAGE_LIMIT_REACHED)
    except grpc.aio.AioRpcError as refused:
        attempts = json.loads(single_error_info(refused).metadata["attempts"])
        skipped = ("skipped", "USAGE_LIMIT_REACHED")
    remote = [a for a in attempts if a["provider"] == "huggingface"]
    assert remote and all((a["outcome"], a["error_class"]) == skipped for a in remote)
    assert len(router.chat_requests()) == calls_before


async def test_cost_limit_counts_priced_tokens(llm: Any, tmp_path: Path) -> None:
    # One call: 12 prompt + 7 completion tokens at 0.5 / 1.5 USD per million = 0.0000165 USD.
    stub = await llm(plans_with(tmp_path, monthly_cost=0.00002))
    await call(stub, llm.md)
    await call(stub, llm.md)  # 0.0000165 < 0.00002: still allowed
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(stub, llm.md)
    info = single_error_info(caught.value)
    assert info.reason == "USAGE_LIMIT_REACHED" and info.metadata["usageType"] == "cost"


async def test_concurrent_calls_cannot_all_slip_under_the_limit(llm: Any, tmp_path: Path) -> None:
    stub = await llm(plans_with(tmp_path, ai_text_generation_calls=3))
    results = await asyncio.gather(*(call(stub, llm.md) for _ in range(8)), return_exceptions=True)
    served = [r for r in results if isinstance(r, pb.GenerateStructuredResponse)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert 1 <= len(served) <= 3 and len(served) + len(refused) == 8
    assert all(r.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for r in refused)
    usage = await stub.GetUsage(pb.GetUsageRequest(), metadata=llm.md, timeout=5)
    assert sum(row.calls for row in usage.rows if row.outcome == pb.USAGE_OUTCOME_OK) == len(served)
    assert all(row.total_latency_ms > 0 for row in usage.rows)
