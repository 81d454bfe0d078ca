"""The index service's own doctor checks (Diagnose): its storage is writable, its queue drains,
its readiness (the embeddings model's state) and its local models."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from inkwell.diagnostics.v1 import diagnostics_service_pb2 as pb
from libs.model_registry.diagnose import model_findings
from libs.model_registry.registry import ModelRegistry
from libs.runtime.diagnostics import Checks, finding
from services.index.readiness import State
from services.index.service import IndexCore

AREA = "index"
ROLES = frozenset({"embeddings"})
QUEUE_AGE_WARN_S = 300.0


def _storage(index_dir: Path) -> pb.Finding:
    try:
        with tempfile.NamedTemporaryFile(dir=index_dir):
            pass
    except OSError as exc:
        return finding(AREA, "storage", "FAIL", f"{index_dir} is not writable ({exc.strerror})", "STORAGE_NOT_WRITABLE")
    return finding(AREA, "storage", "PASS", f"{index_dir} is writable")


async def _queue(core: IndexCore) -> list[pb.Finding]:
    queued, oldest = await asyncio.to_thread(core.store.queue_stats)
    age = time.time() - oldest if oldest else 0.0
    slow = queued > 0 and age >= QUEUE_AGE_WARN_S
    return [
        finding(
            AREA,
            "queue",
            "WARN" if slow else "PASS",
            f"{queued} job(s) queued; oldest {age:.0f} s old",
            "INDEX_NOT_READY" if slow else "",
        )
    ]


async def _readiness(core: IndexCore) -> list[pb.Finding]:
    snap = core.readiness.snapshot
    detail = (
        f"{snap.state.value}{': ' + snap.reason if snap.reason else ''}{' ' + snap.message if snap.message else ''}"
    )
    if snap.state is State.READY:
        return [finding(AREA, "readiness", "PASS", f"READY with {snap.model}")]
    if snap.state is State.FAILED:
        return [finding(AREA, "readiness", "FAIL", detail, snap.reason or "MODEL_UNAVAILABLE")]
    return [finding(AREA, "readiness", "WARN", detail, snap.reason or "INDEX_NOT_READY")]


async def _storage_check(index_dir: Path) -> list[pb.Finding]:
    return [await asyncio.to_thread(_storage, index_dir)]


def index_checks(core: IndexCore, registry: ModelRegistry, index_dir: Path) -> Checks:
    return {
        "storage": lambda: _storage_check(index_dir),
        "queue": lambda: _queue(core),
        "readiness": lambda: _readiness(core),
        "models": lambda: model_findings(registry, ROLES, ROLES),
    }
