"""The real entry points: configuration errors stop startup with the setting and the fix,
SIGTERM shuts down gracefully, and the dev token CLI works (and is refused in production)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.processes import ROOT, clean_env, free_port, log_lines, spawn, wait_for_log


def run(module: str, timeout: float = 30, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module], cwd=ROOT, env=clean_env(**env), capture_output=True, text=True, timeout=timeout
    )


def test_bad_settings_stop_startup_naming_the_setting_and_fix(tmp_path: Path) -> None:
    result = run(
        "services.auth",
        INKWELL_ENV="production",
        CLERK_PUBLISHABLE_KEY="pk_test_nothost",
        CLERK_CLOCK_SKEW_S="600",
        INKWELL_DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 2
    assert "CLERK_PUBLISHABLE_KEY:" in result.stderr and "CLERK_CLOCK_SKEW_S:" in result.stderr
    assert "Fix:" in result.stderr and "Traceback" not in result.stderr


def test_dev_issuer_is_refused_in_production(tmp_path: Path) -> None:
    result = run(
        "services.auth",
        INKWELL_ENV="production",
        INKWELL_DEV_ISSUER="true",
        CLERK_ISSUER="https://clerk.example.com",
        INKWELL_DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 2 and "INKWELL_DEV_ISSUER" in result.stderr
    token = subprocess.run(
        [sys.executable, "-m", "cli", "token", "--user", "alice"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=clean_env(INKWELL_ENV="production", INKWELL_DATA_DIR=str(tmp_path)),
    )
    assert token.returncode == 2 and "refused in production" in token.stderr


def test_a_default_start_is_production_and_refuses_development_shortcuts(tmp_path: Path) -> None:
    """No INKWELL_ENV: production. The dev issuer, ALLOW_UNVERIFIED_JWT_DEV and loopback /ops access
    each stop startup (exit 2) naming the setting and the fix, in auth and in the gateway."""
    bare = run("services.auth", INKWELL_DATA_DIR=str(tmp_path))
    assert bare.returncode == 2 and "CLERK_PUBLISHABLE_KEY: production needs a Clerk instance" in bare.stderr
    shortcuts = {"INKWELL_DEV_ISSUER": "true", "ALLOW_UNVERIFIED_JWT_DEV": "true"}
    auth = run("services.auth", CLERK_ISSUER="https://clerk.example.com", INKWELL_DATA_DIR=str(tmp_path), **shortcuts)
    gateway = run("gateway", INKWELL_OPS_LOOPBACK="true", INKWELL_DATA_DIR=str(tmp_path), **shortcuts)
    for result, settings in ((auth, shortcuts), (gateway, {**shortcuts, "INKWELL_OPS_LOOPBACK": "true"})):
        assert result.returncode == 2 and "Traceback" not in result.stderr
        problems = [line for line in result.stderr.splitlines() if line.strip().startswith("- ")]
        for name in settings:
            assert [p for p in problems if f"- {name}:" in p and "Fix:" in p], (name, result.stderr)


def test_gateway_bad_settings(tmp_path: Path) -> None:
    result = run("gateway", INKWELL_AUTH_ADDR="nohostport", INKWELL_GATEWAY_PORT="99999")
    assert result.returncode == 2
    assert "INKWELL_AUTH_ADDR:" in result.stderr and "INKWELL_GATEWAY_PORT:" in result.stderr


def test_sigterm_goes_not_serving_then_stops(tmp_path: Path) -> None:
    """SIGTERM: health says NOT_SERVING at once while calls are still answered for the drain
    window (INKWELL_DRAIN_S), then the process stops cleanly."""
    from inkwell.auth.v1 import auth_service_pb2 as pb
    from inkwell.auth.v1 import auth_service_pb2_grpc as pb_grpc

    port = free_port()
    log = tmp_path / "auth.log"
    proc = spawn(
        "services.auth",
        log,
        INKWELL_AUTH_PORT=port,
        INKWELL_ENV="development",
        INKWELL_DATA_DIR=str(tmp_path),
        ALLOW_UNVERIFIED_JWT_DEV="true",
        INKWELL_SHUTDOWN_GRACE_S="2",
        INKWELL_DRAIN_S="3",
    )
    service = "inkwell.auth.v1.AuthService"
    try:
        wait_for_log(log, "readiness changed")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert status.status == health_pb2.HealthCheckResponse.SERVING
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            wait_for_log(log, "shutting down")
            status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
            # Still answering during the drain: a bad token is judged (UNAUTHENTICATED), not refused.
            try:
                pb_grpc.AuthServiceStub(channel).VerifySession(pb.VerifySessionRequest(token="x.y.z"), timeout=5)
                raise AssertionError("a malformed token verified")
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAUTHENTICATED, exc
            assert proc.poll() is None, "the process stopped inside its drain window"
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - signalled >= 3
    finally:
        proc.kill()
    events = [line.get("event") for line in log_lines(log)]
    assert events.index("shutting down") < events.index("drain window over; stopping") < events.index("stopped")
    warning = [line for line in log_lines(log) if line.get("reason") == "UNVERIFIED_JWT_SETTING_IGNORED"]
    assert warning and "INKWELL_ENV=development" in warning[0]["event"]
    assert all(line.get("level") for line in log_lines(log)), "every log line is JSON"


def test_dev_token_cli_mints_tokens_the_service_verifies(tmp_path: Path) -> None:
    from inkwell.auth.v1 import auth_service_pb2 as pb
    from inkwell.auth.v1 import auth_service_pb2_grpc as pb_grpc

    port = free_port()
    log = tmp_path / "auth.log"
    env = {"INKWELL_ENV": "development", "INKWELL_DATA_DIR": str(tmp_path)}
    proc = spawn("services.auth", log, INKWELL_AUTH_PORT=port, **env)
    try:
        wait_for_log(log, "readiness changed")
        # INKWELL_ENV unset (production by default): the CLI still signs with the key `make run` created.
        token = subprocess.run(
            [sys.executable, "-m", "cli", "token", "--user", "alice"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
            env=clean_env(INKWELL_DATA_DIR=str(tmp_path)),
        ).stdout
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.AuthServiceStub(channel)
            response = stub.VerifySession(pb.VerifySessionRequest(token=token.strip()), timeout=5)
            assert response.principal.user_id == "dev:alice" and response.principal.development
            with_started = time.monotonic()
            try:
                stub.VerifySession(pb.VerifySessionRequest(token=token.strip()[:-4] + "AAAA"), timeout=5)
                raise AssertionError("a tampered dev token verified")
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
            assert time.monotonic() - with_started < 5
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert "eyJ" not in log.read_text(), "tokens must never be logged"


def test_gateway_drains_under_load_and_flushes_collapsed_lines_at_exit(tmp_path: Path) -> None:
    """SIGTERM under load: /readyz turns 503 SHUTTING_DOWN, every request sent during the drain
    window is served (none refused), the process exits 0, and the "(repeated) N" summary of a
    flood of identical failures reaches the log when it stops."""
    import asyncio

    import httpx

    port = free_port()
    log = tmp_path / "gateway.log"
    proc = spawn(
        "gateway",
        log,
        INKWELL_GATEWAY_PORT=port,
        INKWELL_DATA_DIR=str(tmp_path / "data"),
        INKWELL_AUTH_ADDR=f"127.0.0.1:{free_port()}",  # no auth needed: every request is TOKEN_MISSING
        INKWELL_DRAIN_S="3",
        INKWELL_SHUTDOWN_GRACE_S="2",
    )
    url = f"http://127.0.0.1:{port}"
    refused: list[str] = []
    statuses: list[int] = []

    async def flood(client: httpx.AsyncClient, stop: asyncio.Event, loaded: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                statuses.append((await client.get("/api/auth/me")).status_code)
            except httpx.TransportError as exc:
                refused.append(type(exc).__name__)
            if len(statuses) >= 100:
                loaded.set()

    async def scenario() -> tuple[int, float]:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            for _ in range(999):
                assert (await client.get("/api/auth/me")).status_code == 401
            stop, loaded = asyncio.Event(), asyncio.Event()
            workers = [asyncio.create_task(flood(client, stop, loaded)) for _ in range(20)]
            await loaded.wait()  # under load before the signal
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            ready = await client.get("/readyz")
            while ready.status_code != 503 or ready.json()["error"]["reason"] != "SHUTTING_DOWN":
                ready = await client.get("/readyz")
            before = len(statuses)
            await asyncio.sleep(max(0.0, 2.5 - (time.monotonic() - signalled)))  # load for most of the 3 s drain
            stop.set()
            await asyncio.gather(*workers)
            return len(statuses) - before, signalled

    try:
        wait_for_log(log, "gateway started")
        served_during_drain, signalled = asyncio.run(scenario())
        assert proc.wait(timeout=20) == 0
        assert time.monotonic() - signalled >= 3
    finally:
        proc.kill()
    assert refused == [], f"{len(refused)} requests refused during the drain window"
    assert served_during_drain > 20 and set(statuses) == {401}
    lines = log_lines(log)
    summaries = [line for line in lines if line.get("event") == "authentication failed (repeated)"]
    total = sum(line["repeated"] for line in summaries)
    firsts = [line for line in lines if line.get("event") == "authentication failed"]
    assert len(firsts) + total == 999 + len(statuses), (len(firsts), total, len(statuses))
    assert summaries and lines.index(summaries[-1]) > [line.get("event") for line in lines].index("stopped")
