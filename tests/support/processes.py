"""Start Inkwell processes the way `make run` does, on free loopback ports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLERK_", "INKWELL_"))}
    env.pop("ALLOW_UNVERIFIED_JWT_DEV", None)
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    return env


def spawn(module: str, log_path: Path, **env: Any) -> subprocess.Popen[bytes]:
    log = log_path.open("wb")
    return subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env=clean_env(**env), stdout=log, stderr=log)


def log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_text().splitlines():
        try:
            lines.append(json.loads(raw))
        except json.JSONDecodeError:
            lines.append({"raw": raw})
    return lines


def wait_for_log(path: Path, event: str, timeout_s: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in log_lines(path):
            if line.get("event") == event:
                return line
        time.sleep(0.05)
    raise AssertionError(f"{event!r} not logged in {path}:\n{path.read_text()[-3000:]}")
