"""Reports event-loop callbacks that keep the gateway's only loop busy for longer than a threshold
(INKWELL_LOOP_BLOCK_WARN_MS; 0, the default, is off). The test suite turns it on and fails on any
report, so a handler that does CPU-heavy work on the loop is caught where it is written.

Why not asyncio's debug mode ("Executing ... took"): it times callbacks by the wall clock, and on
a shared machine a callback that is merely descheduled for 20 ms reads as blocking. This watch
charges each callback the CPU time of the loop's own thread (time.thread_time), minus the time
the garbage collector ran inside it, so a threshold of a few milliseconds is both strict (a 10 ms
walk per call is caught) and quiet under load. It wraps asyncio's `Handle._run`, so it needs the
pure-Python loop: with the watch on, the gateway runs uvicorn with loop="asyncio".
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from libs.runtime.metrics import LOOP_BLOCKED

log = logging.getLogger("inkwell.gateway.loop")

REASON = "EVENT_LOOP_BLOCKED"
# "METHOD /route/template" of the request a task serves, set once routed (never the raw path)
SERVING: ContextVar[str | None] = ContextVar("inkwell_serving", default=None)


@dataclass
class Blocked:
    callback: str
    cpu_ms: float
    wall_ms: float


@dataclass
class LoopWatch:
    """Watches the loop running in the thread that calls `start`."""

    threshold_ms: float
    blocked: list[Blocked] = field(default_factory=list)
    thread_id: int | None = None
    reported: threading.Event = field(default_factory=threading.Event)  # set by each report

    def start(self) -> None:
        self.thread_id = threading.get_ident()
        _install()
        _WATCHES[self.thread_id] = self

    def stop(self) -> None:
        if self.thread_id is not None:
            _WATCHES.pop(self.thread_id, None)

    def report(self, handle: asyncio.Handle, cpu_s: float, wall_s: float) -> None:
        entry = Blocked(describe(handle), round(cpu_s * 1e3, 1), round(wall_s * 1e3, 1))
        if len(self.blocked) < 100:
            self.blocked.append(entry)
        LOOP_BLOCKED.inc()
        log.warning(
            "event loop blocked",
            extra={"reason": REASON, "callback": entry.callback, "cpu_ms": entry.cpu_ms, "wall_ms": entry.wall_ms},
        )
        self.reported.set()


_WATCHES: dict[int, LoopWatch] = {}
_gc_cpu = [0.0, 0.0]  # [CPU seconds the collector used in the watched threads, start of the running one]
_original_run: Callable[[asyncio.Handle], None] | None = None


def _gc_callback(phase: str, info: dict[str, Any]) -> None:
    if threading.get_ident() not in _WATCHES:
        return
    if phase == "start":
        _gc_cpu[1] = time.thread_time()
    else:
        _gc_cpu[0] += time.thread_time() - _gc_cpu[1]


def _install() -> None:
    global _original_run
    if _original_run is not None:
        return
    original = asyncio.events.Handle._run
    _original_run = original

    def timed_run(self: asyncio.Handle) -> None:
        watch = _WATCHES.get(threading.get_ident())
        if watch is None:
            original(self)
            return
        gc_before = _gc_cpu[0]
        cpu0 = time.thread_time()
        wall0 = time.perf_counter()
        try:
            original(self)
        finally:
            cpu = time.thread_time() - cpu0 - (_gc_cpu[0] - gc_before)
            if cpu * 1e3 > watch.threshold_ms:
                watch.report(self, cpu, time.perf_counter() - wall0)

    asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
    gc.callbacks.append(_gc_callback)


def describe(handle: asyncio.Handle) -> str:
    """The coroutine (for a task step) or the function a callback ran; code names only."""
    callback = getattr(handle, "_callback", None)
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        if code is not None:
            where = f"task {code.co_qualname} ({code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno})"
            context = getattr(handle, "_context", None)
            serving = context.get(SERVING) if context is not None else None
            return f"{where} serving {serving}" if serving else where
        return f"task {type(coro).__qualname__}"
    return str(getattr(callback, "__qualname__", type(callback).__qualname__))
