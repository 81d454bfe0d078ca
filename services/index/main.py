"""Start the index service: listen at once (liveness), then load the embeddings model and the
indexes in the background (readiness). Heavy imports (txtai, torch) happen after listening."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from inkwell.index.v1 import index_service_pb2_grpc as pb_grpc
from libs.model_registry import grpc_service as models_grpc
from libs.model_registry.catalog import ModelEntry
from libs.model_registry.downloads import ACTIVE, DownloadState
from libs.model_registry.loaders import set_torch_threads
from libs.model_registry.loading import NoModelAvailable
from libs.model_registry.registry import ModelRegistry
from libs.runtime.client import open_channel
from libs.runtime.diagnostics import SERVICE_NAME as DIAGNOSTICS_NAME
from libs.runtime.diagnostics import DiagnosticsServicer
from libs.runtime.diagnostics import register as diagnostics_register
from libs.runtime.entry import run_service
from libs.runtime.identity import InternalTokenVerifier, internal_key_cache
from libs.runtime.server import ServiceServer, cancel_tasks, start_server
from libs.runtime.settings import ConfigError
from services.index.diagnose import index_checks
from services.index.engine import IndexEngine, choose_engine, encoder_config, txtai_factory
from services.index.readiness import Readiness, Snapshot, State
from services.index.service import SERVICE_NAME, IndexCore, IndexServicer, drain_forever
from services.index.settings import AUDIENCE, IndexSettings
from services.index.store import IndexStore

log = logging.getLogger("inkwell.index")

ROLE = "embeddings"


@dataclass
class RunningIndex:
    server: ServiceServer
    core: IndexCore
    registry: ModelRegistry
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.port

    async def stop(self) -> None:
        await self.server.stop()
        await cancel_tasks(self.tasks)
        if self.core.engine is not None:
            await self.core.engine.run(self.core.engine.save_dirty)
            self.core.engine.close()
        self.registry.close()
        self.core.store.close()
        for close in self.closers:
            await close()


def open_store(settings: IndexSettings) -> IndexStore:
    try:
        settings.index_dir.mkdir(parents=True, exist_ok=True)
        return IndexStore(settings.index_dir / "store.sqlite3")
    except OSError as exc:
        raise ConfigError(
            [
                f"INKWELL_DATA_DIR: the index directory {settings.index_dir} is not writable ({exc.strerror}). "
                "Fix: point INKWELL_DATA_DIR (or INKWELL_INDEX_DIR) at a writable directory"
            ]
        ) from None


async def bring_up(core: IndexCore, registry: ModelRegistry, settings: IndexSettings) -> None:
    """LOADING_MODEL until the embeddings model is downloaded and loaded, then READY."""
    loop = asyncio.get_running_loop()

    def load_fn(entry: ModelEntry, path: Path) -> IndexEngine:
        set_torch_threads(settings.torch_threads)

        def on_rebuild(active: bool, key: str) -> None:
            asyncio.run_coroutine_threadsafe(core.readiness.rebuilding(active, key), loop)

        engine = choose_engine(entry.spec.engines, settings.embeddings_engine)
        return IndexEngine(
            settings.index_dir,
            core.store,
            txtai_factory(
                path, encoder_config(path, engine, cache=settings.encoder_dir, threads=settings.torch_threads)
            ),
            max_open=settings.max_open_indexes,
            on_rebuild=on_rebuild,
            engine=engine,
        )

    registry.loader.register("embeddings", load_fn)
    registry.start_downloads([ROLE])
    chain = registry.catalog.chain(ROLE)
    model = chain[0].name
    await core.readiness.set(State.LOADING_MODEL, "MODEL_LOADING", "loading the embeddings model", model=model)
    while True:
        statuses = [registry.downloads.status(e.name) for e in chain]
        if any(s.state is DownloadState.READY for s in statuses):
            try:
                loaded = await registry.loader.acquire(ROLE)
            except NoModelAvailable as exc:
                await core.readiness.set(State.FAILED, "MODEL_UNAVAILABLE", str(exc))
                await asyncio.sleep(5)
                continue
            except Exception as exc:
                log.exception("the embeddings model failed to load", extra={"reason": "MODEL_LOAD_FAILED"})
                await core.readiness.set(State.FAILED, "MODEL_LOAD_FAILED", f"{type(exc).__name__}: {exc}"[:300])
                return
            core.engine = loaded.handle
            await core.readiness.set(State.READY, model=loaded.name)
            await check_indexes(core)
            return
        active = [s for s in statuses if s.state in ACTIVE]
        if active:
            s = active[0]
            progress = s.bytes_done / s.bytes_total if s.bytes_total else 0.0
            await core.readiness.set(
                State.LOADING_MODEL,
                "MODEL_DOWNLOADING",
                f"downloading {s.name}: {s.bytes_done}/{s.bytes_total} bytes",
                progress,
            )
        else:
            failed = "; ".join(f"{s.name}: {s.reason or s.state.value} {s.message}" for s in statuses)
            await core.readiness.set(State.FAILED, "MODEL_UNAVAILABLE", failed)
            registry.downloads.refresh_local()  # an operator may `inkwell models pull` it meanwhile
        await asyncio.sleep(0.2 if active else 5.0)


async def check_indexes(core: IndexCore) -> None:
    """Load every user's index once: a damaged one is rebuilt (DEGRADED meanwhile), a stale one
    (a crash between storing and indexing) catches up with the store."""
    engine = core.engine
    assert engine is not None
    await engine.run(engine.check_all)
    log.info("indexes checked")


async def start_index(settings: IndexSettings, registry: ModelRegistry | None = None) -> RunningIndex:
    store = open_store(settings)
    registry = registry or ModelRegistry(settings)
    server_holder: list[ServiceServer] = []

    async def mirror_health(snapshot: Snapshot) -> None:
        if server_holder:
            await server_holder[0].set_ready(snapshot.serving, SERVICE_NAME)

    core = IndexCore(store, Readiness(on_change=mirror_health), settings.batch_documents, settings.max_wait_s)
    auth_channel = open_channel(settings.auth_address)
    keys = internal_key_cache(auth_channel)

    diagnostics = DiagnosticsServicer(SERVICE_NAME, "index", index_checks(core, registry, settings.index_dir))

    def register(server: grpc.aio.Server) -> None:
        pb_grpc.add_IndexServiceServicer_to_server(IndexServicer(core), server)
        models_grpc.register(server, registry)
        diagnostics_register(server, diagnostics)

    server = await start_server(
        domain="index.inkwell",
        service_names=[SERVICE_NAME, models_grpc.SERVICE_NAME, DIAGNOSTICS_NAME],
        register=register,
        host=settings.host,
        port=settings.port,
        verifier=InternalTokenVerifier(AUDIENCE, keys, max_lifetime_s=settings.internal_token_ttl_s),
        grace_s=settings.shutdown_grace_s,
        max_connection_age_s=settings.grpc_max_connection_age_s,
    )
    server_holder.append(server)
    await server.set_ready(True, models_grpc.SERVICE_NAME)
    await server.set_ready(True, DIAGNOSTICS_NAME)
    keys.start()
    tasks = [
        asyncio.create_task(bring_up(core, registry, settings), name="index-bring-up"),
        asyncio.create_task(drain_forever(core), name="index-drain"),
        asyncio.create_task(
            core.watch_storage(settings.index_dir, settings.storage_probe_s), name="index-storage-probe"
        ),
    ]
    running = RunningIndex(server, core, registry, tasks)

    async def close_keys() -> None:
        await keys.close()
        await auth_channel.close()

    running.closers.append(close_keys)
    return running


def main() -> None:
    run_service("index", IndexSettings, start_index)


if __name__ == "__main__":
    main()
