"""`inkwell doctor` names the root causes the RCA tracker had to dig out by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PUBLISHABLE_KEY
from tests.support.fake_clerk import FakeClerk, SigningKey
from tests.support.fake_router import FakeRouter
from tests.support.processes import ROOT, clean_env, free_port

QWEN72 = "Qwen/Qwen2.5-72B-Instruct"
LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"


def doctor(tmp_path: Path, *areas: str, **env: Any) -> tuple[int, list[dict[str, Any]]]:
    args = [sys.executable, "-m", "cli", "doctor", "--json", *[f"--only={a}" for a in areas]]
    base = {
        "INKWELL_DATA_DIR": str(tmp_path / "data"),
        "INKWELL_MODEL_CACHE": str(tmp_path / "hf"),
        "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}",
    }
    result = subprocess.run(
        args, cwd=ROOT, env=clean_env(**{**base, **env}), capture_output=True, text=True, timeout=120
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)["checks"]


def find(checks: list[dict[str, Any]], **match: str) -> list[dict[str, Any]]:
    return [c for c in checks if all(c.get(k) == v for k, v in match.items())]


@pytest.fixture
def router() -> Iterator[FakeRouter]:
    fake = FakeRouter(catalog={QWEN72: {"structured": True}}).start()
    yield fake
    fake.stop()


def test_mismatched_clerk_keys_are_a_configuration_failure(
    tmp_path: Path, fake_clerk: FakeClerk, other_instance_key: SigningKey
) -> None:
    fake_clerk.backend_keys = [other_instance_key]
    code, checks = doctor(
        tmp_path,
        "clerk",
        CLERK_PUBLISHABLE_KEY=PUBLISHABLE_KEY,
        CLERK_SECRET_KEY=fake_clerk.secret_key,
        CLERK_FRONTEND_API_URL=fake_clerk.url,
        CLERK_API_URL=fake_clerk.url,
    )
    assert code == 1
    (mismatch,) = find(checks, reason="CLERK_INSTANCE_MISMATCH")
    assert mismatch["status"] == "FAIL" and mismatch["klass"] == "CONFIG"
    assert "secret key and publishable key belong to different Clerk instances" in mismatch["cause"]
    assert find(checks, name="JWKS reachable", status="PASS") and find(checks, name="clock", status="PASS")


def test_matching_clerk_keys_pass(tmp_path: Path, fake_clerk: FakeClerk) -> None:
    code, checks = doctor(
        tmp_path,
        "clerk",
        CLERK_PUBLISHABLE_KEY=PUBLISHABLE_KEY,
        CLERK_SECRET_KEY=fake_clerk.secret_key,
        CLERK_FRONTEND_API_URL=fake_clerk.url,
        CLERK_API_URL=fake_clerk.url,
    )
    assert code == 0 and {c["status"] for c in checks} == {"PASS"}
    assert find(checks, name="same instance", status="PASS")


@pytest.mark.parametrize(
    ("env", "reason", "needle"),
    [
        (
            {"INKWELL_ENV": "production", "INKWELL_DEV_ISSUER": "true", "CLERK_ISSUER": "https://clerk.example.com"},
            "CLERK_NOT_CONFIGURED",
            "INKWELL_DEV_ISSUER",
        ),
        (
            {"ALLOW_UNVERIFIED_JWT_DEV": "true", "CLERK_PUBLISHABLE_KEY": PUBLISHABLE_KEY, "CLERK_JWT_KEY": ""},
            "UNVERIFIED_JWT_SETTING_IGNORED",
            "ALLOW_UNVERIFIED_JWT_DEV",
        ),
    ],
)
def test_unsafe_auth_settings_fail(tmp_path: Path, env: dict[str, str], reason: str, needle: str) -> None:
    code, checks = doctor(tmp_path, "clerk", **env)
    assert code == 1
    failures = find(checks, status="FAIL", reason=reason)
    assert failures and needle in failures[0]["cause"]


def test_dead_route_is_named_with_its_url(tmp_path: Path, router: FakeRouter) -> None:
    code, checks = doctor(tmp_path, "llm", HF_TOKEN="hf_abc", INKWELL_HF_BASE_URL=f"{router.url}/hf/v1")
    assert code == 1
    (route,) = find(checks, name="route huggingface")
    assert (route["status"], route["reason"]) == ("FAIL", "ROUTE_NOT_FOUND")
    assert f"{router.url}/hf/v1/models answered 404" in route["cause"]


def test_unknown_model_id_is_named(tmp_path: Path, router: FakeRouter) -> None:
    code, checks = doctor(tmp_path, "llm", HF_TOKEN="hf_abc", INKWELL_HF_BASE_URL=f"{router.url}/v1")
    assert code == 1
    assert find(checks, name="route huggingface", status="PASS")
    assert find(checks, name="qwen2.5-72b-instruct", status="PASS")
    (missing,) = find(checks, name="llama-3.1-8b-instruct")
    assert (missing["status"], missing["reason"]) == ("FAIL", "MODEL_UNAVAILABLE") and LLAMA8 in missing["cause"]


def test_token_problems(tmp_path: Path, router: FakeRouter) -> None:
    _, checks = doctor(tmp_path, "llm", HF_TOKEN="sk-not-hf", INKWELL_HF_BASE_URL=f"{router.url}/v1")
    assert find(checks, name="HF_TOKEN", status="FAIL", reason="CREDENTIALS")
    _, checks = doctor(tmp_path, "llm", HF_TOKEN="", INKWELL_HF_BASE_URL=f"{router.url}/v1")
    assert find(checks, name="HF_TOKEN", status="WARN", reason="PROVIDER_NOT_CONFIGURED")


def test_models_offline_and_services_down(tmp_path: Path) -> None:
    code, checks = doctor(
        tmp_path,
        "models",
        "services",
        "index",
        INKWELL_AUTH_ADDR=f"127.0.0.1:{free_port()}",
        INKWELL_LLM_ADDR=f"127.0.0.1:{free_port()}",
        INKWELL_INDEX_ADDR=f"127.0.0.1:{free_port()}",
        INKWELL_GATEWAY_URL=f"http://127.0.0.1:{free_port()}",
    )
    assert code == 1
    assert find(checks, name="all-minilm-l6-v2 (embeddings)", status="PASS")
    agent = find(checks, name="qwen2.5-0.5b-instruct (agent_llm)")[0]
    assert (agent["status"], agent["reason"]) == ("WARN", "OFFLINE")
    assert {c["name"] for c in find(checks, area="services", status="FAIL")} == {"auth", "llm", "index", "gateway"}
    assert find(checks, area="index", name="storage", status="PASS")


def test_text_report_separates_configuration_from_dependencies(tmp_path: Path, router: FakeRouter) -> None:
    env = clean_env(HF_TOKEN="hf_abc", INKWELL_HF_BASE_URL=f"{router.url}/hf/v1", INKWELL_DATA_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "cli", "doctor", "--only", "llm"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "FAIL  route huggingface" in result.stdout and "Configuration problems:" in result.stdout
    assert "fix: the provider's base URL is wrong" in result.stdout
