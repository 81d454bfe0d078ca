"""LLM readiness from what the preflight found: SERVING only while at least one candidate of some
purpose can answer a call that brings no API key of its own.

A remote candidate can answer when its route is configured, not refused (404 route, bad key) and
not unreachable at the last preflight, and the model is not marked unavailable; a local one when
a model of its role's chain is downloaded and did not run out of memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from libs.model_registry.downloads import DownloadState
from libs.model_registry.loading import LoadState
from libs.model_registry.registry import ModelRegistry
from services.llm.router import Router
from services.llm.routes import RouteState


@dataclass(frozen=True)
class Readiness:
    ready: bool
    answerable: tuple[str, ...]  # purposes with a candidate that can answer
    detail: str  # why not, per candidate, when not ready


def _candidate_problem(router: Router, registry: ModelRegistry, candidate: str) -> str | None:
    kind, _, name = candidate.partition(":")
    if kind == "remote":
        spec = router.catalog.remote_models.get(name)
        if spec is None:
            return f"{candidate}: not in the registry"
        route = router.routes[spec.provider]
        if not route.usable(None) or route.state is RouteState.UNREACHABLE:
            return f"{candidate}: route {route.name} is {route.state.value}"
        unavailable = route.model_unavailable(spec.model)
        return f"{candidate}: {unavailable}" if unavailable else None
    problems = []
    for entry in registry.catalog.chain(name):
        download = registry.downloads.status(entry.name).state
        if download is not DownloadState.READY:
            problems.append(f"{entry.name} {download.value}")
        elif registry.loader.record(entry.name).state is LoadState.OUT_OF_MEMORY:
            problems.append(f"{entry.name} OUT_OF_MEMORY")
        else:
            return None
    return f"{candidate}: " + (", ".join(problems) or "no local model in the chain")


def assess(router: Router, registry: ModelRegistry) -> Readiness:
    answerable: list[str] = []
    problems: list[str] = []
    for purpose, spec in router.catalog.purposes.items():
        found = [_candidate_problem(router, registry, c) for c in spec.chain]
        if any(problem is None for problem in found):
            answerable.append(purpose)
        else:
            problems.extend(p for p in found if p)
    detail = "" if answerable else "no candidate of any purpose can answer: " + "; ".join(dict.fromkeys(problems))
    return Readiness(bool(answerable), tuple(answerable), detail[:1000])
