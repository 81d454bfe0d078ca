"""Choosing and loading a role's model: memory-aware, single-flight, fail fast, remembered.

- The first model of the role's chain that is downloaded and fits in available memory is used.
- One load per model at a time: concurrent first requests await the same load.
- Only known out-of-memory signatures fall back to the next model; any other load error is a
  defect and is raised (fail fast).
- A model that ran out of memory is skipped on later calls until `retry_after_s` has passed or
  noticeably more memory is free, so the failing model is not retried on every call.
- Models idle for `idle_unload_s` are unloaded.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from libs.model_registry.catalog import Catalog, ModelEntry
from libs.model_registry.downloads import DownloadManager, DownloadState
from libs.model_registry.memory import MemoryProbe, available_memory_bytes

log = logging.getLogger("inkwell.models.loading")

LoadFn = Callable[[ModelEntry, Path], Any]

OOM_MESSAGES = ("DefaultCPUAllocator: can't allocate memory", "out of memory", "CUDA out of memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """Known OOM signatures only: MemoryError, torch.OutOfMemoryError, allocator messages."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc) for m in OOM_MESSAGES)


class LoadState(StrEnum):
    NOT_LOADED = "NOT_LOADED"
    LOADING = "LOADING"
    LOADED = "LOADED"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"


@dataclass
class LoadRecord:
    name: str
    state: LoadState = LoadState.NOT_LOADED
    handle: Any = None
    loaded_at: float = 0.0
    last_used: float = 0.0
    failed_at: float = 0.0
    memory_at_failure: int = 0
    message: str = ""


@dataclass(frozen=True)
class LoadedModel:
    name: str
    entry: ModelEntry
    handle: Any


@dataclass
class Unavailable:
    name: str
    reason: str
    message: str


class NoModelAvailable(Exception):
    """No model of the role's chain can be used now; `candidates` says why for each."""

    def __init__(self, role: str, candidates: list[Unavailable]) -> None:
        self.role = role
        self.candidates = candidates
        detail = "; ".join(f"{c.name}: {c.reason} ({c.message})" for c in candidates)
        super().__init__(f"no model for role {role!r} is available: {detail}")


class ModelLoader:
    def __init__(
        self,
        catalog: Catalog,
        downloads: DownloadManager,
        *,
        memory: MemoryProbe = available_memory_bytes,
        retry_after_s: float = 600.0,
        idle_unload_s: float = 900.0,
        auto_download: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.catalog = catalog
        self.downloads = downloads
        self.memory = memory
        self.retry_after_s = retry_after_s
        self.idle_unload_s = idle_unload_s
        self.auto_download = auto_download
        self.clock = clock
        self._load_fns: dict[str, LoadFn] = {}
        self._records: dict[str, LoadRecord] = {name: LoadRecord(name) for name in catalog.models}
        self._loading: dict[str, asyncio.Task[Any]] = {}

    def register(self, task: str, load_fn: LoadFn) -> None:
        """How to load models of a task ("text-generation", "embeddings") in this process."""
        self._load_fns[task] = load_fn

    def record(self, name: str) -> LoadRecord:
        return self._records[name]

    async def acquire(self, role: str) -> LoadedModel:
        """The role's best usable model, loading it if needed."""
        skipped: list[Unavailable] = []
        for entry in self.catalog.chain(role):
            record = self._records[entry.name]
            if record.state is LoadState.LOADED:
                record.last_used = self.clock()
                return LoadedModel(entry.name, entry, record.handle)
            blocked = self._blocked(entry)
            if blocked is not None:
                skipped.append(blocked)
                continue
            path = self.downloads.path(entry.name)
            assert path is not None
            try:
                handle = await self._load_once(entry, path)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                record.state = LoadState.OUT_OF_MEMORY
                record.failed_at = self.clock()
                record.memory_at_failure = self.memory()
                record.message = f"{type(exc).__name__}: {exc}"[:200]
                log.warning(
                    "model ran out of memory while loading; falling back",
                    extra={"model": entry.name, "role": role, "reason": "MODEL_OUT_OF_MEMORY"},
                )
                skipped.append(Unavailable(entry.name, "OUT_OF_MEMORY", record.message))
                continue
            record.last_used = self.clock()
            if skipped:
                log.info(
                    "using a fallback model",
                    extra={"role": role, "model": entry.name, "skipped": [s.name for s in skipped]},
                )
            return LoadedModel(entry.name, entry, handle)
        raise NoModelAvailable(role, skipped)

    def _blocked(self, entry: ModelEntry) -> Unavailable | None:
        """Why this model cannot be tried now, or None."""
        status = self.downloads.status(entry.name)
        if status.state is not DownloadState.READY:
            absent = status.state is DownloadState.ABSENT
            if absent and self.auto_download:
                self.downloads.ensure(entry.name)
            reason = status.reason or ("NOT_DOWNLOADED" if absent else status.state.value)
            return Unavailable(entry.name, reason, status.message or f"download state {status.state.value}")
        record = self._records[entry.name]
        available = self.memory()
        if record.state is LoadState.OUT_OF_MEMORY:
            waited = self.clock() - record.failed_at
            freed = available - record.memory_at_failure
            if waited < self.retry_after_s and freed < entry.spec.ram_bytes // 2:
                return Unavailable(
                    entry.name,
                    "OUT_OF_MEMORY",
                    f"ran out of memory {waited:.0f} s ago; "
                    f"tried again after {self.retry_after_s:.0f} s or when memory frees",
                )
        if record.state is not LoadState.LOADING and entry.spec.ram_bytes > available:
            return Unavailable(
                entry.name,
                "INSUFFICIENT_MEMORY",
                f"needs about {entry.spec.ram_gib:.1f} GiB, {available / 1024**3:.1f} GiB available",
            )
        return None

    async def _load_once(self, entry: ModelEntry, path: Path) -> Any:
        task = self._loading.get(entry.name)
        if task is None:
            load_fn = self._load_fns.get(entry.spec.task)
            if load_fn is None:
                raise RuntimeError(f"no loader registered for task {entry.spec.task!r} in this service")
            record = self._records[entry.name]
            record.state = LoadState.LOADING
            task = asyncio.create_task(self._run_load(load_fn, entry, path), name=f"load-{entry.name}")
            self._loading[entry.name] = task
        return await asyncio.shield(task)

    async def _run_load(self, load_fn: LoadFn, entry: ModelEntry, path: Path) -> Any:
        record = self._records[entry.name]
        started = time.monotonic()
        try:
            handle = await asyncio.to_thread(load_fn, entry, path)
        except BaseException:
            record.state = LoadState.NOT_LOADED
            raise
        finally:
            self._loading.pop(entry.name, None)
        record.state, record.handle, record.loaded_at = LoadState.LOADED, handle, self.clock()
        record.message = ""
        log.info("model loaded", extra={"model": entry.name, "seconds": round(time.monotonic() - started, 2)})
        return handle

    def unload_idle(self) -> list[str]:
        """Drop models unused for `idle_unload_s`; returns their names."""
        now = self.clock()
        unloaded = []
        for record in self._records.values():
            if record.state is LoadState.LOADED and now - record.last_used >= self.idle_unload_s:
                record.state, record.handle = LoadState.NOT_LOADED, None
                unloaded.append(record.name)
        if unloaded:
            gc.collect()
            log.info("idle models unloaded", extra={"models": unloaded})
        return unloaded

    async def run_idle_unloader(self, interval_s: float = 30.0) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self.unload_idle()
