"""Real Inkwell processes (auth, index, gateway) on free loopback ports, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inkwell.auth.v1 import auth_service_pb2 as auth_pb
from inkwell.auth.v1 import auth_service_pb2_grpc as auth_grpc
from inkwell.index.v1 import index_service_pb2 as index_pb
from inkwell.index.v1 import index_service_pb2_grpc as index_grpc
from services.auth.dev_issuer import DevIssuer
from tests.support.processes import free_port, spawn, wait_for_log

INDEX_SERVICE = "inkwell.index.v1.IndexService"
# The gateway reports any event-loop callback using more CPU than this (README: "Event-loop
# blocking check"); stop() fails the test run when it did. Benchmarks pass 0 (off).
LOOP_BLOCK_WARN_MS = 8


def health(address: str, service: str, timeout: float = 1.0) -> int | None:
    try:
        with grpc.insecure_channel(address) as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
            return int(response.status)
    except grpc.RpcError:
        return None


# The int8 ONNX export of the embeddings model, shared by every test run on this machine (keyed by
# the source model and toolchain, written atomically): exporting it per test would cost ~10 s each.
ENCODER_CACHE = Path(tempfile.gettempdir()) / f"inkwell-test-encoders-{os.getuid()}"


class Services:
    def __init__(self, root: Path, **common_env: Any) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.env = {
            "INKWELL_ENV": "development",
            "INKWELL_DATA_DIR": str(self.data_dir),
            "INKWELL_TORCH_THREADS": "1",
            "INKWELL_ENCODER_CACHE": str(ENCODER_CACHE),
            "HF_HUB_OFFLINE": "1",
            **common_env,
        }
        self.auth_port = free_port()
        self.index_port = free_port()
        self.auth: subprocess.Popen[bytes] | None = None
        self.index: subprocess.Popen[bytes] | None = None
        self.gateway: subprocess.Popen[bytes] | None = None
        self.gateway_port = free_port()
        self.llm_port = free_port()
        self.llm: subprocess.Popen[bytes] | None = None
        self.index_starts = 0
        self._dev: DevIssuer | None = None
        self._tokens: dict[str, tuple[str, float]] = {}
        self._index_channel: grpc.Channel | None = None
        self.gateway_log: Path | None = None

    @property
    def auth_address(self) -> str:
        return f"127.0.0.1:{self.auth_port}"

    @property
    def index_address(self) -> str:
        return f"127.0.0.1:{self.index_port}"

    def start_auth(self) -> None:
        log = self.root / "auth.log"
        self.auth = spawn("services.auth", log, INKWELL_AUTH_PORT=self.auth_port, **self.env)
        wait_for_log(log, "readiness changed")
        self._dev = DevIssuer(self.data_dir)

    def start_index(self, **env: Any) -> Path:
        self.index_starts += 1
        log = self.root / f"index-{self.index_starts}.log"
        self.index = spawn(
            "services.index",
            log,
            INKWELL_INDEX_PORT=self.index_port,
            INKWELL_AUTH_ADDR=self.auth_address,
            **{**self.env, **env},
        )
        return log

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def start_llm(self, base_url: str, **env: Any) -> Path:
        log = self.root / "llm.log"
        settings = {
            "HF_TOKEN": "hf_test_token",
            "INKWELL_MODEL_CACHE": str(self.root / "hf-empty"),
            # The packaged SmolLM2 would load in every LLM process (CPU for minutes): opt in per stack.
            "INKWELL_PACKAGED_MODELS": "false",
            **self.env,
            "INKWELL_LLM_PORT": self.llm_port,
            "INKWELL_AUTH_ADDR": self.auth_address,
            "INKWELL_HF_BASE_URL": base_url,
            **env,
        }
        self.llm = spawn("services.llm", log, **settings)
        wait_for_log(log, "listening")
        return log

    def start_gateway(self, **env: Any) -> Path:
        log = self.root / "gateway.log"
        self.gateway = spawn(
            "gateway",
            log,
            INKWELL_GATEWAY_PORT=self.gateway_port,
            INKWELL_AUTH_ADDR=self.auth_address,
            INKWELL_INDEX_ADDR=self.index_address,
            INKWELL_LLM_ADDR=f"127.0.0.1:{self.llm_port}",
            **{"INKWELL_LOOP_BLOCK_WARN_MS": LOOP_BLOCK_WARN_MS, **self.env, **env},
        )
        self.gateway_log = log
        wait_for_log(log, "Application startup complete.")
        deadline = time.monotonic() + 20  # uvicorn binds its socket just after the lifespan starts
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.gateway_url}/healthz", timeout=1).status_code == 200:
                    return log
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError(f"the gateway never answered /healthz:\n{log.read_text()[-2000:]}")

    def session_token(self, user: str) -> str:
        """A development Clerk-shaped session token, as the frontend would send."""
        assert self._dev is not None
        return self._dev.mint(user, ttl_s=600)

    def kill_index(self, sig: int = signal.SIGKILL) -> None:
        assert self.index is not None
        self.index.send_signal(sig)
        self.index.wait(30)
        if self._index_channel is not None:
            self._index_channel.close()
            self._index_channel = None

    def token(self, user: str) -> str:
        """An internal identity token for `user` (through the real auth service)."""
        cached = self._tokens.get(user)
        if cached and cached[1] > time.time() + 15:
            return cached[0]
        assert self._dev is not None
        with grpc.insecure_channel(self.auth_address) as channel:
            response = auth_grpc.AuthServiceStub(channel).VerifySession(
                auth_pb.VerifySessionRequest(token=self._dev.mint(user, ttl_s=600)), timeout=5
            )
        self._tokens[user] = (response.internal_token, float(response.internal_token_expires_at.seconds))
        return str(response.internal_token)

    def metadata(self, user: str) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token(user)}")]

    @property
    def stub(self) -> index_grpc.IndexServiceStub:
        if self._index_channel is None:
            self._index_channel = grpc.insecure_channel(self.index_address)
        return index_grpc.IndexServiceStub(self._index_channel)

    def readiness(self, user: str = "ops") -> index_pb.Readiness:
        # Readiness is open, like health: no identity needed.
        return self.stub.GetReadiness(index_pb.GetReadinessRequest(), timeout=5).readiness

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if health(self.index_address, INDEX_SERVICE) == health_pb2.HealthCheckResponse.SERVING:
                return
            time.sleep(0.1)
        raise AssertionError("the index service never became ready")

    def wait_drained(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.readiness().queued_jobs == 0:
                return
            time.sleep(0.2)
        raise AssertionError("the index queue never drained")

    def index_docs(self, user: str, docs: list[dict[str, Any]], critical: bool = False, timeout: float = 10) -> Any:
        mode = index_pb.WRITE_MODE_CRITICAL if critical else index_pb.WRITE_MODE_BACKGROUND
        request = index_pb.IndexDocumentsRequest(
            documents=[index_pb.Document(id=d["id"], text=d["text"], metadata=d.get("metadata", {})) for d in docs],
            mode=mode,
        )
        return self.stub.IndexDocuments(request, metadata=self.metadata(user), timeout=timeout).job

    def search(
        self, user: str, query: str, limit: int = 10, filters: dict[str, str] | None = None, timeout: float = 30
    ) -> list[Any]:
        request = index_pb.SearchRequest(query=query, limit=limit, filters=filters or {})
        return list(self.stub.Search(request, metadata=self.metadata(user), timeout=timeout).hits)

    def stop(self) -> None:
        if self._index_channel is not None:
            self._index_channel.close()
        for proc in (self.gateway, self.llm, self.index, self.auth):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.assert_loop_never_blocked()

    def assert_loop_never_blocked(self) -> None:
        """Fails when the gateway logged EVENT_LOOP_BLOCKED (a handler hogged its event loop)."""
        if self.gateway_log is None or not self.gateway_log.exists():
            return
        blocked = [
            line for line in self.gateway_log.read_text(errors="replace").splitlines() if "EVENT_LOOP_BLOCKED" in line
        ]
        assert not blocked, "the gateway's event loop was blocked:\n" + "\n".join(blocked[:10])
