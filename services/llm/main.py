"""Start the LLM service: listen at once; preflight every route in the background and every few
minutes; local models download and load in the background through the registry."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field

import grpc

from inkwell.llm.v1 import llm_service_pb2_grpc as pb_grpc
from libs.model_registry import grpc_service as models_grpc
from libs.model_registry.catalog import ModelEntry
from libs.model_registry.loaders import CausalLM, load_causal_lm, set_torch_threads
from libs.model_registry.loading import NoModelAvailable
from libs.model_registry.registry import ModelRegistry
from libs.plans import load_plans
from libs.runtime.client import open_channel
from libs.runtime.diagnostics import SERVICE_NAME as DIAGNOSTICS_NAME
from libs.runtime.diagnostics import DiagnosticsServicer
from libs.runtime.diagnostics import register as diagnostics_register
from libs.runtime.entry import run_service
from libs.runtime.identity import InternalTokenVerifier, internal_key_cache
from libs.runtime.jwks import KeySetCache
from libs.runtime.server import ServiceServer, cancel_tasks, start_server
from libs.runtime.settings import ConfigError
from services.llm.diagnose import llm_checks
from services.llm.local import LocalGenerator
from services.llm.readiness import assess
from services.llm.router import Router
from services.llm.routes import Route
from services.llm.service import SERVICE_NAME, LlmServicer
from services.llm.settings import AUDIENCE, LlmSettings
from services.llm.usage import UsageStore

log = logging.getLogger("inkwell.llm")


@dataclass
class RunningLlm:
    server: ServiceServer
    router: Router
    registry: ModelRegistry
    usage: UsageStore
    servicer: LlmServicer
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    channel: grpc.aio.Channel | None = None
    keys: KeySetCache | None = None

    @property
    def port(self) -> int:
        return self.server.port

    async def stop(self) -> None:
        await self.server.stop()
        await cancel_tasks(self.tasks)
        await self.servicer.recorder.close()
        self.registry.close()
        self.usage.close()
        if self.keys is not None:
            await self.keys.close()
        if self.channel is not None:
            await self.channel.close()


def build_routes(settings: LlmSettings, registry: ModelRegistry, log_changes: bool = True) -> dict[str, Route]:
    routes = {}
    for name, provider in registry.catalog.providers.items():
        base_url = provider.base_url
        if name == "huggingface" and settings.hf_base_url:
            base_url = settings.hf_base_url
        if provider.api_key_env == "HF_TOKEN":
            api_key = settings.hf_token.get_secret_value()
        else:
            api_key = os.environ.get(provider.api_key_env, "") if provider.api_key_env else ""
        route = Route(
            name, base_url.rstrip("/"), api_key, settings.provider_concurrency, settings.unavailable_ttl_s, log_changes
        )
        if not api_key and log_changes:
            log.warning(
                f"configuration: provider {name!r} has no API key ({provider.api_key_env or 'none configured'}); "
                "it is skipped until one is set (or sent per request)",
                extra={"reason": "PROVIDER_NOT_CONFIGURED", "provider": name, "route": route.base_url},
            )
        routes[name] = route
    return routes


READINESS_EVERY_S = 5.0  # cheap: a local download finishing shows up within seconds


async def preflight_forever(
    routes: dict[str, Route], interval_s: float, server: ServiceServer, router: Router, registry: ModelRegistry
) -> None:
    """Preflight every route each `interval_s`; between preflights re-assess readiness (a
    download may finish, a model be marked unavailable) and report each change."""
    loop = asyncio.get_running_loop()
    ready: bool | None = None
    next_preflight = 0.0
    while True:
        if loop.time() >= next_preflight:
            await asyncio.gather(*(route.preflight() for route in routes.values()), return_exceptions=True)
            next_preflight = loop.time() + interval_s
        found = assess(router, registry)
        if found.ready is not ready:
            ready = found.ready
            await server.set_ready(ready, SERVICE_NAME)
            if ready:
                log.info("readiness changed", extra={"ready": True, "purposes": list(found.answerable)})
            else:
                log.warning(
                    f"readiness changed: NOT_SERVING: {found.detail}",
                    extra={"ready": False, "reason": "NO_CANDIDATE_READY"},
                )
        await asyncio.sleep(min(READINESS_EVERY_S, interval_s))


async def preload(registry: ModelRegistry, local: LocalGenerator, role: str) -> None:
    """Load the role's model in the background at startup, so the first request does not pay for
    it; ListModels shows LOADING then LOADED. Nothing usable yet (downloads pending) is not an error:
    the first request that finds one loads it."""
    started = time.monotonic()
    try:
        loaded = await registry.loader.acquire(role)
        await asyncio.to_thread(local.backend, loaded.handle)  # the grammar's vocabulary, once
        log.info(
            "local model ready",
            extra={
                "role": role,
                "model": loaded.name,
                "source": getattr(loaded.handle, "source", ""),
                "seconds": round(time.monotonic() - started, 2),
            },
        )
    except NoModelAvailable as missing:
        log.info("no local model to preload yet", extra={"role": role, "detail": str(missing)[:300]})
    except Exception:
        log.exception("the local model failed to load", extra={"role": role, "reason": "MODEL_PRELOAD_FAILED"})


async def start_llm(settings: LlmSettings, registry: ModelRegistry | None = None) -> RunningLlm:
    registry = registry or ModelRegistry(settings)

    def load_fn(entry: ModelEntry, path: object) -> CausalLM:
        set_torch_threads(settings.torch_threads)
        return load_causal_lm(entry, path, settings.dequantized_dir)  # type: ignore[arg-type]

    registry.loader.register("text-generation", load_fn)
    routes = build_routes(settings, registry)
    local = LocalGenerator(registry)
    router = Router(registry.catalog, routes, local)
    try:
        usage = UsageStore(settings.usage_db)
    except OSError as exc:
        raise ConfigError(
            [
                f"INKWELL_DATA_DIR: cannot write {settings.usage_db} ({exc.strerror}). "
                "Fix: point INKWELL_DATA_DIR (or INKWELL_LLM_USAGE_DB) at a writable place"
            ]
        ) from None
    channel = open_channel(settings.auth_address)
    keys = internal_key_cache(channel)

    servicer = LlmServicer(router, registry, usage, settings.default_timeout_s, load_plans(settings.plans_file))

    diagnostics = DiagnosticsServicer(SERVICE_NAME, "llm", llm_checks(settings, router, registry))

    def register(server: grpc.aio.Server) -> None:
        pb_grpc.add_LlmServiceServicer_to_server(servicer, server)
        models_grpc.register(server, registry)
        diagnostics_register(server, diagnostics)

    server = await start_server(
        domain="llm.inkwell",
        service_names=[SERVICE_NAME, models_grpc.SERVICE_NAME, DIAGNOSTICS_NAME],
        register=register,
        host=settings.host,
        port=settings.port,
        verifier=InternalTokenVerifier(AUDIENCE, keys, max_lifetime_s=settings.internal_token_ttl_s),
        grace_s=settings.shutdown_grace_s,
        max_connection_age_s=settings.grpc_max_connection_age_s,
    )
    await server.set_ready(True, models_grpc.SERVICE_NAME)
    await server.set_ready(True, DIAGNOSTICS_NAME)
    keys.start()
    registry.start_downloads(["agent_llm"])
    tasks = [
        asyncio.create_task(
            preflight_forever(routes, settings.preflight_interval_s, server, router, registry), name="llm-preflight"
        ),
        asyncio.create_task(registry.loader.run_idle_unloader(), name="llm-idle-unload"),
    ]
    if settings.preload_local_model:
        tasks.append(asyncio.create_task(preload(registry, local, "agent_llm"), name="llm-preload"))
    running = RunningLlm(server, router, registry, usage, servicer, tasks, channel, keys)
    return running


def main() -> None:
    run_service("llm", LlmSettings, start_llm)


if __name__ == "__main__":
    main()
