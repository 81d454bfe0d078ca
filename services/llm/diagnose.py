"""The LLM service's own doctor checks (Diagnose): its HF token, each provider route (a fresh
preflight), each remote model of the registry on its route, and its local models."""

from __future__ import annotations

import asyncio

from inkwell.diagnostics.v1 import diagnostics_service_pb2 as pb
from libs.model_registry.diagnose import model_findings
from libs.model_registry.registry import ModelRegistry
from libs.runtime.diagnostics import Checks, finding
from services.llm.router import Router
from services.llm.routes import RouteState
from services.llm.settings import LlmSettings

AREA = "llm"
ROLES = frozenset({"agent_llm"})


def _token(settings: LlmSettings) -> pb.Finding:
    token = settings.hf_token.get_secret_value()
    if not token:
        return finding(
            AREA,
            "HF_TOKEN",
            "WARN",
            "HF_TOKEN is not set: the Hugging Face provider is skipped",
            "PROVIDER_NOT_CONFIGURED",
        )
    if not token.startswith("hf_"):
        return finding(
            AREA, "HF_TOKEN", "FAIL", "HF_TOKEN does not start with hf_ (the router refuses it)", "CREDENTIALS"
        )
    return finding(AREA, "HF_TOKEN", "PASS", "present and well formed")


async def _routes(settings: LlmSettings, router: Router) -> list[pb.Finding]:
    out = [_token(settings)]
    routes = router.routes
    await asyncio.gather(*(r.preflight() for r in routes.values()))
    for route in routes.values():
        name = f"route {route.name}"
        if route.state is RouteState.OK:
            out.append(finding(AREA, name, "PASS", f"{route.base_url}/models lists {len(route.models)} models"))
        elif route.state is RouteState.NOT_CONFIGURED:
            out.append(finding(AREA, name, "WARN", f"{route.base_url}: {route.detail}", "NOT_CONFIGURED"))
        else:
            out.append(finding(AREA, name, "FAIL", route.detail, route.state.value))
    for name, spec in router.catalog.remote_models.items():
        route = routes[spec.provider]
        label = f"model {spec.model} via {route.base_url}"
        if route.state is not RouteState.OK:
            out.append(finding(AREA, name, "WARN", f"{label}: not checked ({route.state.value})", route.state.value))
            continue
        unavailable = route.model_unavailable(spec.model)
        info = route.models.get(spec.model.split(":", 1)[0])
        if unavailable:
            out.append(finding(AREA, name, "FAIL", f"{label}: {unavailable}", "MODEL_UNAVAILABLE"))
        elif info is not None and info.structured is False:
            out.append(
                finding(AREA, name, "WARN", f"{label}: live, but no structured output (prompted JSON)", "CAPABILITY")
            )
        else:
            out.append(finding(AREA, name, "PASS", f"{label}: live"))
    return out


def llm_checks(settings: LlmSettings, router: Router, registry: ModelRegistry) -> Checks:
    return {
        "routes": lambda: _routes(settings, router),
        "models": lambda: model_findings(registry, ROLES, frozenset()),
    }
