"""Talking to the Hugging Face Hub: list a pinned revision's files, download one file with
progress and cancellation, find a complete local copy, and turn failures into reason codes.

huggingface_hub does the transfer (atomic rename into its cache, Range resume on a dropped
connection); this module adds what it lacks: sizes up front, a cancel switch, and reasons.
"""

from __future__ import annotations

import errno
import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub import errors as hf_errors
from huggingface_hub.utils import tqdm as hf_tqdm

from libs.model_registry.catalog import LocalModel

MANIFEST_DIR = ".inkwell"


class DownloadCancelled(Exception):
    """The download was cancelled by a caller."""


class DownloadFailed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class RepoFile:
    name: str
    size: int
    sha256: str | None  # LFS files carry their sha256; small git files do not


def classify(exc: BaseException) -> DownloadFailed:
    """One place that maps hub, network and disk failures to reason codes."""
    if isinstance(exc, DownloadFailed):
        return exc
    name = type(exc).__name__
    if isinstance(exc, hf_errors.OfflineModeIsEnabled):
        return DownloadFailed("OFFLINE", "HF_HUB_OFFLINE is set: models can only come from the local cache")
    if isinstance(exc, hf_errors.GatedRepoError):
        return DownloadFailed("UNAUTHORIZED", "the repository is gated: accept its terms and set HF_TOKEN")
    if isinstance(exc, hf_errors.RepositoryNotFoundError | hf_errors.RevisionNotFoundError):
        return DownloadFailed("NOT_FOUND", f"repository or revision not found on the hub ({name})")
    if isinstance(exc, hf_errors.EntryNotFoundError | hf_errors.RemoteEntryNotFoundError):
        return DownloadFailed("NOT_FOUND", f"a file of the model is missing on the hub ({name})")
    if isinstance(exc, hf_errors.LocalEntryNotFoundError):
        return DownloadFailed("OFFLINE", "the hub could not be reached and the model is not in the local cache")
    if isinstance(exc, hf_errors.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else 0
        if status in (401, 403):
            return DownloadFailed("UNAUTHORIZED", f"the hub refused access (HTTP {status}): check HF_TOKEN")
        if status == 404:
            return DownloadFailed("NOT_FOUND", "the hub answered 404 for this model")
        return DownloadFailed("HUB_ERROR", f"the hub answered HTTP {status}")
    if _is_network_error(exc):
        return DownloadFailed("OFFLINE", f"the hub is unreachable ({name}: {exc})"[:300])
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return DownloadFailed("DISK_FULL", "the disk filled up during the download")
    return DownloadFailed("DOWNLOAD_FAILED", f"{name}: {exc}"[:300])


_HTTP_LIBRARIES = frozenset({"httpx", "httpx2", "httpcore", "requests", "urllib3"})
_TRANSPORT_ERRORS = frozenset({"TransportError", "TimeoutException", "NetworkError", "ConnectError", "ConnectionError"})


def _is_network_error(exc: BaseException) -> bool:
    """Connection and timeout errors of whichever HTTP library huggingface_hub uses."""
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return any(
        cls.__name__ in _TRANSPORT_ERRORS and cls.__module__.split(".")[0] in _HTTP_LIBRARIES
        for cls in type(exc).__mro__
    )


def _progress_class(on_bytes: Callable[[int], None], cancelled: threading.Event) -> type[hf_tqdm]:
    class Progress(hf_tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            if cancelled.is_set():
                raise DownloadCancelled()
            on_bytes(int(n or 0))
            return None

    return Progress


class HubClient:
    def __init__(
        self,
        endpoint: str,
        cache_dir: Path | None,
        token: str | None,
        offline: bool,
        timeout_s: float = 5.0,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.cache_dir = cache_dir
        self.token = token or False
        self.offline = offline
        self.timeout_s = timeout_s
        self._api = HfApi(endpoint=self.endpoint, token=self.token)

    def list_files(self, spec: LocalModel) -> list[RepoFile]:
        """The files of the pinned revision that the registry wants, with their sizes."""
        if self.offline:
            raise DownloadFailed("OFFLINE", "HF_HUB_OFFLINE is set: models can only come from the local cache")
        try:
            info = self._api.model_info(
                spec.repo_id, revision=spec.revision, files_metadata=True, timeout=self.timeout_s
            )
        except Exception as exc:
            raise classify(exc) from exc
        files = []
        for sibling in info.siblings or []:
            if spec.wants(sibling.rfilename):
                lfs = sibling.lfs
                files.append(RepoFile(sibling.rfilename, int(sibling.size or 0), lfs.sha256 if lfs else None))
        if not files:
            raise DownloadFailed("NOT_FOUND", f"no file of {spec.repo_id}@{spec.revision[:8]} matches {spec.files}")
        return files

    def download(
        self, spec: LocalModel, file: RepoFile, on_bytes: Callable[[int], None], cancelled: threading.Event
    ) -> Path:
        try:
            path = hf_hub_download(
                spec.repo_id,
                file.name,
                revision=spec.revision,
                cache_dir=self.cache_dir,
                token=self.token,
                endpoint=self.endpoint,
                etag_timeout=self.timeout_s,
                tqdm_class=_progress_class(on_bytes, cancelled),
            )
        except DownloadCancelled:
            raise
        except Exception as exc:
            raise classify(exc) from exc
        return Path(path)

    def verify(self, path: Path, file: RepoFile) -> None:
        size = path.stat().st_size
        if file.size and size != file.size:
            raise DownloadFailed("CORRUPT", f"{file.name} has {size} bytes, the hub says {file.size}")
        if file.sha256:
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            if digest.hexdigest() != file.sha256:
                raise DownloadFailed("CORRUPT", f"{file.name} does not match its sha256")

    # --- the local copy -------------------------------------------------------------------

    def _repo_dir(self, spec: LocalModel) -> Path:
        from huggingface_hub import constants

        root = Path(self.cache_dir) if self.cache_dir else Path(constants.HF_HUB_CACHE)
        return root / ("models--" + spec.repo_id.replace("/", "--"))

    def snapshot_dir(self, spec: LocalModel) -> Path:
        return self._repo_dir(spec) / "snapshots" / spec.revision

    def _manifest(self, spec: LocalModel) -> Path:
        return self._repo_dir(spec) / MANIFEST_DIR / f"{spec.revision}.json"

    def write_manifest(self, spec: LocalModel, files: list[RepoFile]) -> None:
        path = self._manifest(spec)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"files": [{"name": f.name, "size": f.size} for f in files]}))
        tmp.replace(path)

    def local_copy(self, spec: LocalModel) -> Path | None:
        """The snapshot directory when every file is there (checked against our manifest), else None."""
        snapshot = self.snapshot_dir(spec)
        manifest = self._manifest(spec)
        if manifest.exists():
            try:
                files = json.loads(manifest.read_text())["files"]
            except (ValueError, KeyError):
                return None
            for entry in files:
                path = snapshot / entry["name"]
                if not path.exists() or (entry["size"] and path.stat().st_size != entry["size"]):
                    return None
            return snapshot
        # Downloaded by another tool: accept a snapshot that has a config and weights.
        if (snapshot / "config.json").exists() and any(snapshot.glob("*.safetensors")):
            return snapshot
        return None

    def bytes_on_disk(self, spec: LocalModel, files: list[RepoFile]) -> int:
        snapshot = self.snapshot_dir(spec)
        return sum(f.size for f in files if (snapshot / f.name).exists())
