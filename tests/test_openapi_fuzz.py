"""schemathesis against the gateway's own /openapi.json, over the real stack (auth, llm with the
fake Hugging Face router, index, gateway): every check, a few examples per operation.

A failure here means the document and the behaviour disagree: an undocumented status, a body
that does not match its schema, a 5xx for bad input, or valid input refused.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from gateway.app import create_app
from gateway.settings import GatewaySettings
from libs.runtime.settings import load
from tests.support.fake_router import FakeRouter, ok
from tests.support.stack import Services
from tests.test_workflow_api import LLAMA8, QWEN72, day_plan

USER = "user_fuzz"
# The first operation also starts the stack; every operation makes up to 8 calls plus coverage cases.
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    router = FakeRouter(catalog={QWEN72: {"structured": True}, LLAMA8: {"structured": True}}).start()
    router.default = {QWEN72: ok(day_plan()), LLAMA8: ok(day_plan())}
    services = Services(tmp_path_factory.mktemp("fuzz-stack"))
    services.start_auth()
    services.start_index()
    services.start_llm(f"{router.url}/v1")
    # The fuzz run checks statuses and shapes; the 8 ms loop check belongs to the route tests
    # (test_gateway, test_fairshare, test_workflow_api). Here hypothesis hits cold paths with odd
    # inputs on a shared 2-core machine, so only a gross block (50 ms of CPU) fails the run.
    services.start_gateway(INKWELL_LOOP_BLOCK_WARN_MS=50)
    services.wait_ready()
    yield services
    services.stop()
    router.stop()


def _document() -> dict[str, Any]:
    """The document the gateway serves, built in-process (nothing starts until the lifespan).
    schemathesis' lazy fixture loader does not work with pytest 9, so the schema is loaded here
    and test_the_served_document_is_the_fuzzed_one checks it is the one /openapi.json serves."""
    with tempfile.TemporaryDirectory() as data_dir:
        return create_app(load(GatewaySettings, INKWELL_DATA_DIR=data_dir)).openapi()


DOCUMENT = _document()
# /ops is an HTML page for operators (tested in test_workflow_api).
schema = schemathesis.openapi.from_dict(DOCUMENT).exclude(path="/ops")


def test_the_served_document_is_the_fuzzed_one(fuzz_stack: Services) -> None:
    assert httpx.get(f"{fuzz_stack.gateway_url}/openapi.json", timeout=10).json() == DOCUMENT


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_gateway_matches_its_openapi_document(case: Any, fuzz_stack: Services) -> None:
    case.call_and_validate(
        base_url=fuzz_stack.gateway_url,
        headers={"Authorization": f"Bearer {fuzz_stack.session_token(USER)}"},
        timeout=60,
    )
