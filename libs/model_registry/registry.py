"""ModelRegistry: the catalog, downloads and loads of one process, and their status rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from libs.model_registry.catalog import Catalog, load_catalog
from libs.model_registry.downloads import DownloadManager, DownloadState
from libs.model_registry.hub import HubClient
from libs.model_registry.loading import LoadState, ModelLoader
from libs.model_registry.memory import MemoryProbe, available_memory_bytes
from libs.model_registry.settings import ModelRegistrySettings


@dataclass(frozen=True)
class ModelRow:
    """One model as an operator sees it (ListModels, `inkwell models`)."""

    name: str
    kind: str  # "local" or "remote"
    roles: tuple[str, ...]
    model_id: str
    revision: str = ""
    provider: str = ""
    task: str = ""
    dtype: str = ""
    context_length: int = 0
    download_state: str = "NOT_APPLICABLE"
    reason: str = ""
    message: str = ""
    bytes_done: int = 0
    bytes_total: int = 0
    source: str = ""
    ram_estimate_bytes: int = 0
    fits_in_memory: bool = True
    load_state: str = LoadState.NOT_LOADED.value
    loaded_at: float = 0.0
    last_used_at: float = 0.0


class ModelRegistry:
    def __init__(
        self,
        settings: ModelRegistrySettings,
        *,
        catalog: Catalog | None = None,
        memory: MemoryProbe = available_memory_bytes,
        disk_free: Callable[[Path], int] | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog or load_catalog(settings.models_file)
        self.memory = memory
        self.hub = HubClient(
            settings.hf_endpoint,
            settings.model_cache,
            settings.hf_token.get_secret_value() or None,
            settings.hf_offline,
            settings.hub_timeout_s,
        )
        self.downloads = DownloadManager(
            self.catalog,
            self.hub,
            max_workers=settings.download_workers,
            disk_free=disk_free,
            use_packages=settings.use_packaged_models,
        )
        self.loader = ModelLoader(
            self.catalog,
            self.downloads,
            memory=memory,
            retry_after_s=settings.model_retry_after_s,
            idle_unload_s=settings.model_idle_unload_s,
            auto_download=settings.model_auto_download,
        )

    def start_downloads(self, roles: list[str]) -> None:
        """Queue background downloads of every missing model these roles may use (non-blocking)."""
        if not self.settings.model_auto_download:
            return
        for role in roles:
            for entry in self.catalog.chain(role):
                if self.downloads.status(entry.name).state is DownloadState.ABSENT:
                    self.downloads.ensure(entry.name)

    def resolve(self, name_or_repo: str) -> str | None:
        return self.catalog.find(name_or_repo)

    def rows(self) -> list[ModelRow]:
        available = self.memory()
        rows = []
        for name, spec in self.catalog.models.items():
            status = self.downloads.status(name)
            record = self.loader.record(name)
            rows.append(
                ModelRow(
                    name=name,
                    kind="local",
                    roles=tuple(self.catalog.roles_of(name)),
                    model_id=spec.repo_id,
                    revision=spec.revision,
                    task=spec.task,
                    dtype=spec.dtype,
                    context_length=spec.context_length,
                    download_state=status.state.value,
                    reason=status.reason or (record.state.value if record.state is LoadState.OUT_OF_MEMORY else ""),
                    message=status.message or record.message,
                    bytes_done=status.bytes_done,
                    bytes_total=status.bytes_total,
                    source=status.source,
                    ram_estimate_bytes=spec.ram_bytes,
                    fits_in_memory=spec.ram_bytes <= available or record.state is LoadState.LOADED,
                    load_state=record.state.value,
                    loaded_at=record.loaded_at,
                    last_used_at=record.last_used,
                )
            )
        for name, remote in self.catalog.remote_models.items():
            rows.append(
                ModelRow(
                    name=name,
                    kind="remote",
                    roles=(),
                    model_id=remote.model,
                    provider=remote.provider,
                    task="text-generation",
                    context_length=remote.context_length,
                )
            )
        return rows

    def close(self) -> None:
        self.downloads.close()
