from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from inkwell.auth.v1 import auth_service_pb2_grpc
from libs.runtime.reasons import CATALOG
from libs.runtime.settings import load
from services.auth.clerk_keys import encode_publishable_key
from services.auth.main import RunningAuth, start_auth
from services.auth.settings import AuthSettings
from tests.support.fake_clerk import FakeClerk, SigningKey, TokenFactory

CLERK_HOST = "clerk.inkwell.test"
ISSUER = f"https://{CLERK_HOST}"
PUBLISHABLE_KEY = encode_publishable_key(CLERK_HOST, "test")
FRONTEND_ORIGIN = "http://localhost:3000"

# Tests must never reach a real network or a developer's settings.
for _var in [k for k in os.environ if k.startswith(("CLERK_", "INKWELL_")) or k == "ALLOW_UNVERIFIED_JWT_DEV"]:
    del os.environ[_var]


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2 model and tokenizer, built once per run (no download)."""
    from tests.support.tiny_models import build_tiny_qwen2

    return build_tiny_qwen2(tmp_path_factory.mktemp("tiny-qwen2"))


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return SigningKey.generate("ins_2primary")


@pytest.fixture(scope="session")
def other_instance_key() -> SigningKey:
    return SigningKey.generate("ins_2otherinstance")


@pytest.fixture
def fake_clerk(signing_key: SigningKey) -> Iterator[FakeClerk]:
    clerk = FakeClerk([signing_key]).start()
    yield clerk
    clerk.stop()


@pytest.fixture
def tokens(signing_key: SigningKey) -> TokenFactory:
    return TokenFactory(signing_key, ISSUER, azp=FRONTEND_ORIGIN)


def clerk_env(clerk: FakeClerk, data_dir: Path, **extra: Any) -> dict[str, Any]:
    """Settings for an auth service pinned to the fake Clerk instance (production-like)."""
    env: dict[str, Any] = {
        "INKWELL_ENV": "production",
        "INKWELL_DATA_DIR": str(data_dir),
        "INKWELL_AUTH_PORT": 0,
        "CLERK_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
        "CLERK_SECRET_KEY": clerk.secret_key,
        "CLERK_FRONTEND_API_URL": clerk.url,
        "CLERK_API_URL": clerk.url,
        "CLERK_AUTHORIZED_PARTIES": FRONTEND_ORIGIN,
    }
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


class AuthHarness:
    def __init__(self, running: RunningAuth) -> None:
        self.running = running
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        self.stub = auth_service_pb2_grpc.AuthServiceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()
        await self.running.stop()


@pytest.fixture
async def start_auth_service(tmp_path: Path) -> AsyncIterator[Any]:
    started: list[AuthHarness] = []

    async def start(**env: Any) -> AuthHarness:
        env.setdefault("INKWELL_DATA_DIR", str(tmp_path / "data"))
        env.setdefault("INKWELL_AUTH_PORT", 0)
        harness = AuthHarness(await start_auth(load(AuthSettings, **env)))
        started.append(harness)
        return harness

    yield start
    for harness in started:
        await harness.close()


REPO_ROOT = Path(__file__).resolve().parents[1]


def _tree_status() -> set[str] | None:
    """`git status --porcelain` of the checkout (ignored files excluded, as .gitignore says),
    or None outside a git checkout."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return set(out.splitlines())


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_TREE_BEFORE] = _tree_status()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Tests write only under temporary directories: the run fails if the working tree changed."""
    before = session.config.stash.get(_TREE_BEFORE, None)
    after = _tree_status()
    if before is None or after is None:
        return
    changed = sorted(after - before)
    if changed:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "the test run changed the working tree (tests must write under tmp_path):\n  " + "\n  ".join(
            changed[:50]
        )
        if reporter is not None:
            reporter.write_line(message, red=True)
        else:  # pragma: no cover
            print(message)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_TREE_BEFORE = pytest.StashKey[set[str] | None]()


def pytest_configure(config: pytest.Config) -> None:
    """The machine is shared and has 2 cores: one torch thread per test process."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


class _Reasons(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        reason = getattr(record, "reason", None)
        if isinstance(reason, str) and reason:
            self.seen.add(reason)


@pytest.fixture(scope="session", autouse=True)
def _logged_reasons_are_catalogued() -> Iterator[None]:
    """Across the whole run, any reason an in-process log line carried must be catalogued."""
    handler = _Reasons()
    logging.getLogger().addHandler(handler)
    yield
    logging.getLogger().removeHandler(handler)
    unknown = sorted(handler.seen - set(CATALOG))
    assert unknown == [], f"log lines carried reasons missing from the catalog: {unknown}"
