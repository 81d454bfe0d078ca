"""`make run`: start every Inkwell process locally on embedded defaults and stop them on Ctrl-C.

Each service is its own process, exactly as in production; `.env` (if present) is read for
settings, and anything already set in the environment wins.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import grpc
from dotenv import dotenv_values
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Process:
    name: str
    module: str
    popen: subprocess.Popen[bytes] | None = None


DEV_USER = "alice"


def stack_env() -> dict[str, str]:
    """The environment of every process. Every process defaults to production; this local
    launcher, and only it, asks for development explicitly (unless INKWELL_ENV is set)."""
    env = {k: v for k, v in dotenv_values(ROOT / ".env").items() if v is not None} if (ROOT / ".env").exists() else {}
    env.update(os.environ)
    env.setdefault("INKWELL_ENV", "development")
    env.setdefault("INKWELL_DATA_DIR", str(ROOT / "data"))
    if env["INKWELL_ENV"] == "development":
        # The ops page works locally: for the dev user the banner's token acts as, and in a browser
        # on this machine. Both are refused (or unset) in production.
        env.setdefault("INKWELL_OPS_USERS", f"dev:{DEV_USER}")
        env.setdefault("INKWELL_OPS_LOOPBACK", "true")
    return env


def banner(env: dict[str, str], gateway_url: str) -> str:
    development = env["INKWELL_ENV"] == "development"
    mode = (
        "INKWELL_ENV=development, set by make run: the local dev issuer is trusted; "
        "every other start defaults to production"
        if development
        else f"INKWELL_ENV={env['INKWELL_ENV']}"
    )
    lines = [
        f"\n  Inkwell is running ({mode}).",
        f"  Gateway:   {gateway_url}   (API docs: {gateway_url}/docs, readiness: {gateway_url}/readyz)",
        "  Index:     loads its embeddings model in the background; /readyz says when it is ready",
        f"  Ops page:  {gateway_url}/ops   (doctor: make doctor; metrics: {gateway_url}/metrics)",
    ]
    if development:
        lines += [
            f"             open to INKWELL_OPS_USERS={env.get('INKWELL_OPS_USERS', '')}"
            f" and INKWELL_OPS_LOOPBACK={env.get('INKWELL_OPS_LOOPBACK', 'false')} (development only)",
            f"  Dev token: .venv/bin/inkwell token --user {DEV_USER}     (or: make token; acts as user dev:{DEV_USER})",
            f'  Try:       curl -H "Authorization: Bearer $(.venv/bin/inkwell token --user {DEV_USER})" '
            f"{gateway_url}/api/auth/me",
        ]
    lines.append("  Stop:      Ctrl-C\n")
    return "\n".join(lines)


def wait_for_grpc(address: str, service: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
                if status.status == health_pb2.HealthCheckResponse.SERVING:
                    return True
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    return False


def wait_for_http(url: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def stop_all(processes: list[Process], grace_s: float = 15.0) -> None:
    running = [p for p in processes if p.popen and p.popen.poll() is None]
    for p in reversed(running):
        assert p.popen is not None
        p.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for p in running:
        assert p.popen is not None
        try:
            p.popen.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"run: {p.name} did not stop in {grace_s:.0f} s; killing it", file=sys.stderr)
            p.popen.kill()


def main() -> int:
    env = stack_env()
    auth_port = env.setdefault("INKWELL_AUTH_PORT", "50051")
    env.setdefault("INKWELL_AUTH_ADDR", f"127.0.0.1:{auth_port}")
    gateway_port = env.setdefault("INKWELL_GATEWAY_PORT", "8000")
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    index_port = env.setdefault("INKWELL_INDEX_PORT", "50053")
    env.setdefault("INKWELL_INDEX_ADDR", f"127.0.0.1:{index_port}")
    for service, port in (("AUTH", "9151"), ("LLM", "9152"), ("INDEX", "9153")):
        env.setdefault(f"INKWELL_{service}_METRICS_PORT", port)
    llm_port = env.setdefault("INKWELL_LLM_PORT", "50052")
    env.setdefault("INKWELL_LLM_ADDR", f"127.0.0.1:{llm_port}")
    processes = [
        Process("auth", "services.auth"),
        Process("index", "services.index"),
        Process("llm", "services.llm"),
        Process("gateway", "gateway"),
    ]
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        for p in processes:
            # Children ignore the terminal's Ctrl-C; this supervisor stops them in order with SIGTERM.
            p.popen = subprocess.Popen([sys.executable, "-m", p.module], cwd=ROOT, env=env, start_new_session=True)
            address = {
                "auth": env["INKWELL_AUTH_ADDR"],
                "index": env["INKWELL_INDEX_ADDR"],
                "llm": env["INKWELL_LLM_ADDR"],
            }.get(p.name)
            if address and not wait_for_grpc(address, "", 30):
                print(f"run: the {p.name} service did not start; see its log above", file=sys.stderr)
                return 1
        if not wait_for_http(f"{gateway_url}/healthz", 30):
            print("run: the gateway did not start; see its log above", file=sys.stderr)
            return 1
        print(banner(env, gateway_url), flush=True)
        while not stopping:
            for p in processes:
                assert p.popen is not None
                if p.popen.poll() is not None:
                    print(f"run: {p.name} exited with status {p.popen.returncode}; stopping the stack", file=sys.stderr)
                    return 1
            time.sleep(0.3)
        print("\nrun: stopping...", file=sys.stderr)
        return 0
    finally:
        stop_all(processes)


if __name__ == "__main__":
    raise SystemExit(main())
