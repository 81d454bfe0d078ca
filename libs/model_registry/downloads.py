r"""Background model downloads: one state machine per model, one transfer per repo at a time.

absent -> queued -> downloading (bytes done / total) -> verifying -> ready
                                 \-> failed (OFFLINE, NOT_FOUND, DISK_FULL, UNAUTHORIZED, ...) | cancelled

Transfers run on worker threads (huggingface_hub is synchronous), never on an event loop and
never on the startup path. Offline is a terminal state until someone asks again: no retry loop.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from libs.model_registry.catalog import Catalog, LocalModel
from libs.model_registry.hub import DownloadCancelled, DownloadFailed, HubClient, RepoFile, classify
from libs.model_registry.packaged import packaged_path

log = logging.getLogger("inkwell.models.downloads")

DISK_MARGIN = 1.05
DISK_RESERVE_BYTES = 256 * 1024**2


class DownloadState(StrEnum):
    ABSENT = "ABSENT"
    QUEUED = "QUEUED"
    DOWNLOADING = "DOWNLOADING"
    VERIFYING = "VERIFYING"
    READY = "READY"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


ACTIVE = frozenset({DownloadState.QUEUED, DownloadState.DOWNLOADING, DownloadState.VERIFYING})


@dataclass(frozen=True)
class DownloadStatus:
    name: str
    state: DownloadState
    reason: str = ""
    message: str = ""
    bytes_done: int = 0
    bytes_total: int = 0
    source: str = ""  # "package", "cache" or "hub"
    path: Path | None = None
    updated_at: float = 0.0


class DownloadManager:
    def __init__(
        self,
        catalog: Catalog,
        hub: HubClient,
        *,
        max_workers: int = 2,
        disk_free: Callable[[Path], int] | None = None,
        use_packages: bool = True,
    ) -> None:
        self.catalog = catalog
        self.use_packages = use_packages
        self.hub = hub
        self._disk_free = disk_free or (lambda path: shutil.disk_usage(path).free)
        self._lock = threading.Lock()
        self._status: dict[str, DownloadStatus] = {}
        self._inflight: dict[str, Future[DownloadStatus]] = {}  # by repo id
        self._cancel: dict[str, threading.Event] = {}
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="model-download")
        self.refresh_local()

    # --- reading state --------------------------------------------------------------------

    def refresh_local(self) -> None:
        """Find models already on disk (a package, or a complete cache snapshot). Cheap, no network."""
        for name, spec in self.catalog.models.items():
            with self._lock:
                current = self._status.get(name)
                if current is not None and current.state in ACTIVE:
                    continue
            self._set(name, self._local_status(name, spec, current))

    def _local_status(self, name: str, spec: LocalModel, current: DownloadStatus | None) -> DownloadStatus:
        packaged = packaged_path(spec) if self.use_packages else None
        if packaged is not None:
            return DownloadStatus(name, DownloadState.READY, source="package", path=packaged, updated_at=time.time())
        cached = self.hub.local_copy(spec)
        if cached is not None:
            return DownloadStatus(name, DownloadState.READY, source="cache", path=cached, updated_at=time.time())
        if current is not None and current.state in (DownloadState.FAILED, DownloadState.CANCELLED):
            return current
        return DownloadStatus(name, DownloadState.ABSENT, updated_at=time.time())

    def status(self, name: str) -> DownloadStatus:
        with self._lock:
            return self._status[name]

    def statuses(self) -> list[DownloadStatus]:
        with self._lock:
            return list(self._status.values())

    def path(self, name: str) -> Path | None:
        status = self.status(name)
        return status.path if status.state is DownloadState.READY else None

    # --- changing state ---------------------------------------------------------------------

    def ensure(self, name: str) -> Future[DownloadStatus]:
        """Start the download if needed; callers for the same repo share one transfer."""
        spec = self.catalog.models[name]
        with self._lock:
            current = self._status[name]
            if current.state is DownloadState.READY:
                done: Future[DownloadStatus] = Future()
                done.set_result(current)
                return done
            running = self._inflight.get(spec.repo_id)
            if running is not None:
                return running
            cancel = threading.Event()
            self._cancel[spec.repo_id] = cancel
            self._status[name] = DownloadStatus(name, DownloadState.QUEUED, updated_at=time.time())
            future = self._pool.submit(self._run, name, spec, cancel)
            self._inflight[spec.repo_id] = future
        log.info("model download queued", extra={"model": name, "repo_id": spec.repo_id})
        return future

    def cancel(self, name: str) -> bool:
        spec = self.catalog.models[name]
        with self._lock:
            event = self._cancel.get(spec.repo_id)
            if event is None or spec.repo_id not in self._inflight:
                return False
            event.set()
        return True

    def close(self) -> None:
        with self._lock:
            for event in self._cancel.values():
                event.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _set(self, name: str, status: DownloadStatus) -> None:
        with self._lock:
            self._status[name] = status

    def _update(self, name: str, **changes: object) -> None:
        with self._lock:
            self._status[name] = replace(self._status[name], updated_at=time.time(), **changes)  # type: ignore[arg-type]

    def _add_bytes(self, name: str, count: int) -> None:
        with self._lock:
            current = self._status[name]
            self._status[name] = replace(current, bytes_done=current.bytes_done + count)

    def _run(self, name: str, spec: LocalModel, cancel: threading.Event) -> DownloadStatus:
        started = time.monotonic()
        try:
            self._update(name, state=DownloadState.DOWNLOADING)
            files = self.hub.list_files(spec)
            total = sum(f.size for f in files)
            done = self.hub.bytes_on_disk(spec, files)
            self._update(name, bytes_total=total, bytes_done=done)
            self._check_disk(spec, total - done)
            snapshot = self.hub.snapshot_dir(spec)
            for file in files:
                if cancel.is_set():
                    raise DownloadCancelled()
                if (snapshot / file.name).exists():
                    continue
                self.hub.download(spec, file, lambda n: self._add_bytes(name, n), cancel)
            self._update(name, state=DownloadState.VERIFYING, bytes_done=total)
            self._verify(spec, files, snapshot)
            self.hub.write_manifest(spec, files)
            self._update(name, state=DownloadState.READY, source="hub", path=snapshot, reason="", message="")
            log.info(
                "model downloaded",
                extra={"model": name, "bytes": total, "seconds": round(time.monotonic() - started, 2)},
            )
        except DownloadCancelled:
            self._update(name, state=DownloadState.CANCELLED, reason="CANCELLED", message="the download was cancelled")
            log.warning("model download cancelled", extra={"model": name, "reason": "MODEL_DOWNLOAD_CANCELLED"})
        except Exception as exc:
            failure = classify(exc)
            self._update(name, state=DownloadState.FAILED, reason=failure.reason, message=failure.message)
            log.warning(
                f"model download failed: {failure.message}",
                extra={"model": name, "repo_id": spec.repo_id, "reason": failure.reason},
                exc_info=failure.reason == "DOWNLOAD_FAILED",
            )
        finally:
            with self._lock:
                self._inflight.pop(spec.repo_id, None)
                self._cancel.pop(spec.repo_id, None)
        return self.status(name)

    def _check_disk(self, spec: LocalModel, needed: int) -> None:
        root = self.hub.snapshot_dir(spec).parents[2]
        root.mkdir(parents=True, exist_ok=True)
        free = self._disk_free(root)
        if needed * DISK_MARGIN + DISK_RESERVE_BYTES > free:
            raise DownloadFailed(
                "DISK_FULL",
                f"{spec.repo_id} needs {needed / 1e9:.2f} GB and {root} has {free / 1e9:.2f} GB free",
            )

    def _verify(self, spec: LocalModel, files: list[RepoFile], snapshot: Path) -> None:
        for file in files:
            self.hub.verify(snapshot / file.name, file)
