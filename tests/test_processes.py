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
    )
    try:
        wait_for_log(log, "readiness changed")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="inkwell.auth.v1.AuthService"), timeout=5
            )
            assert status.status == health_pb2.HealthCheckResponse.SERVING
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        proc.kill()
    events = [line.get("event") for line in log_lines(log)]
    assert events.index("shutting down") < events.index("stopped")
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
