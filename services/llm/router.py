"""Routing one request through the purpose's chain of candidates, honestly.

For each candidate: skip what is known to be unusable (dead route, missing key, model cached as
unavailable) without calling it; call the rest with exactly one retry layer (transient errors
only, jittered backoff, Retry-After honored, all inside the call's deadline); step down request
shapes on capability errors; repair, then re-ask once on invalid output; then the next candidate.
Every step is an Attempt in the provenance. Nothing valid -> AllFailed with every attempt.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from libs.model_registry.catalog import Catalog
from libs.model_registry.downloads import DownloadState
from libs.model_registry.loading import NoModelAvailable
from services.llm.classify import ErrorClass, UpstreamError
from services.llm.local import LocalGenerator, LocalResult
from services.llm.routes import ChatResult, Route, RouteState
from services.llm.structured import (
    OutputInvalid,
    Shape,
    parse,
    parse_constrained,
    reask_message,
    response_format,
    schema_instruction,
)

log = logging.getLogger("inkwell.llm.router")

MAX_TRANSIENT_ATTEMPTS = 3
MIN_CALL_S = 0.2
MIN_SHARE_S = 1.0  # no candidate's slice of the deadline is shorter than this (unless less is left)


@dataclass
class Attempt:
    provider: str
    model: str
    route: str
    outcome: str  # ok, skipped, error, invalid_output
    error_class: str = ""
    http_status: int = 0
    latency_ms: float = 0.0
    detail: str = ""
    shape: str = ""

    def summary(self) -> str:
        return f"{self.error_class or self.outcome}: {self.provider} {self.model} {self.detail}".strip()[:300]


@dataclass
class Outcome:
    text: str
    provider: str
    requested_model: str
    served_model: str
    served_by: str
    route: str
    stage: str
    attempts: list[Attempt]
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class AllFailed(Exception):
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        return [a.summary() for a in self.attempts if a.outcome != "ok"]

    @property
    def first_cause(self) -> str:
        for attempt in self.attempts:
            if attempt.error_class:
                return attempt.error_class
        return "NO_CANDIDATES"


@dataclass
class Request:
    messages: list[dict[str, str]]
    purpose: str
    max_tokens: int
    temperature: float
    deadline: float  # time.monotonic() value
    api_key: str | None = None
    schema: dict[str, Any] | None = None
    validator: Any = None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    retry_after = getattr(error, "retry_after_s", None)
    if retry_after is not None:
        return float(retry_after)
    return random.uniform(0, min(2.0, 0.25 * 2 ** (state.attempt_number - 1)))


class Router:
    def __init__(self, catalog: Catalog, routes: dict[str, Route], local: LocalGenerator) -> None:
        self.catalog = catalog
        self.routes = routes
        self.local = local

    def candidates(self, purpose: str) -> list[str]:
        found = self.catalog.purposes.get(purpose)
        if found is None:
            raise KeyError(purpose)
        return list(found.chain)

    async def run(self, request: Request) -> Outcome:
        attempts: list[Attempt] = []
        chain = self.candidates(request.purpose)
        for position, candidate in enumerate(chain):
            if request.remaining() < MIN_CALL_S:
                attempts.append(Attempt("-", candidate, "", "skipped", ErrorClass.DEADLINE, detail="no time left"))
                break
            kind, _, name = candidate.partition(":")
            share = self._share(request, sum(1 for c in chain[position:] if self._may_serve(c, request)))
            if kind == "remote":
                outcome = await self._remote(name, share, attempts)
            else:
                outcome = await self._local(name, share, attempts)
            if outcome is not None:
                return outcome
        raise AllFailed(attempts)

    @staticmethod
    def _share(request: Request, live_left: int) -> Request:
        """This candidate's slice of the request's deadline: what is left divided by the candidates
        that may still serve (at least MIN_SHARE_S), so a slow first candidate cannot use it all."""
        remaining = request.remaining()
        slice_s = max(remaining / max(1, live_left), min(remaining, MIN_SHARE_S))
        return replace(request, deadline=min(request.deadline, time.monotonic() + slice_s))

    def _may_serve(self, candidate: str, request: Request) -> bool:
        """Whether a candidate could be called now (known-unusable ones are skipped, costing no time)."""
        kind, _, name = candidate.partition(":")
        if kind == "remote":
            spec = self.catalog.remote_models.get(name)
            route = self.routes.get(spec.provider) if spec is not None else None
            return route is not None and spec is not None and self._skip_reason(route, spec.model, request) is None
        registry = getattr(self.local, "registry", None)
        if registry is None:
            return True
        try:
            entries = registry.catalog.chain(name)
        except KeyError:
            return False
        return any(registry.downloads.status(e.name).state is DownloadState.READY for e in entries)

    # --- remote -------------------------------------------------------------------------------------

    async def _remote(self, name: str, request: Request, attempts: list[Attempt]) -> Outcome | None:
        spec = self.catalog.remote_models[name]
        route = self.routes[spec.provider]
        model = spec.model
        skip = self._skip_reason(route, model, request)
        if skip is not None:
            error_class, detail = skip
            if error_class == ErrorClass.MODEL_UNAVAILABLE:
                # The fallback hides it from the caller; the log (one line a minute) tells the operator.
                log.warning(
                    f"model skipped: {detail}",
                    extra={
                        "reason": "MODEL_UNAVAILABLE",
                        "model": model,
                        "provider": route.name,
                        "base_url": route.base_url,
                    },
                )
            attempts.append(Attempt(route.name, model, route.base_url, "skipped", error_class, detail=detail))
            return None
        shapes = route.shapes(model) if request.schema is not None else [None]
        for shape in shapes:
            messages = self._messages(request, shape)
            fmt = response_format(shape, request.schema) if shape is not None and request.schema else None
            try:
                result = await self._call_with_retries(route, model, messages, fmt, request, attempts, shape)
            except UpstreamError as error:
                if error.error_class is ErrorClass.CAPABILITY and shape is not None:
                    route.refuse_shape(model, shape)
                    continue
                if error.error_class is ErrorClass.MODEL_UNAVAILABLE:
                    await self._model_or_route(route, model, error, attempts)
                elif error.error_class is ErrorClass.CREDENTIALS and not request.api_key:
                    route.state, route.detail = RouteState.CREDENTIALS, f"{route.base_url} refused the API key"
                    log.error(
                        f"configuration error: provider {route.name}: {route.detail}",
                        extra={"reason": "CREDENTIALS", "provider": route.name, "route": route.base_url},
                    )
                return None

            async def reask(msgs: list[dict[str, str]], s: Shape | None = shape, f: Any = fmt) -> ChatResult:
                return await self._call_with_retries(route, model, msgs, f, request, attempts, s)

            return await self._accept(result, request, shape, route.name, model, route.base_url, attempts, reask)
        return None

    def _skip_reason(self, route: Route, model: str, request: Request) -> tuple[str, str] | None:
        if not route.usable(request.api_key):
            error_class = ErrorClass.NOT_CONFIGURED if route.state is RouteState.NOT_CONFIGURED else route.state.value
            return error_class, route.detail
        unavailable = route.model_unavailable(model)
        if unavailable:
            return ErrorClass.MODEL_UNAVAILABLE, unavailable
        return None

    async def _model_or_route(self, route: Route, model: str, error: UpstreamError, attempts: list[Attempt]) -> None:
        """A 404 means a missing model on a live route, or a dead route: ask the route which."""
        if error.http_status == 404 and route.state is not RouteState.OK:
            await route.preflight()
        if route.state is RouteState.ROUTE_NOT_FOUND:
            attempts[-1].error_class = ErrorClass.ROUTE_NOT_FOUND
            attempts[-1].detail = route.detail
            return
        route.mark_unavailable(model, error.detail or "Not Found")

    async def _call_with_retries(
        self,
        route: Route,
        model: str,
        messages: list[dict[str, str]],
        fmt: dict[str, Any] | None,
        request: Request,
        attempts: list[Attempt],
        shape: Shape | None,
    ) -> ChatResult:
        def retryable(error: BaseException) -> bool:
            return (
                isinstance(error, UpstreamError)
                and error.error_class is ErrorClass.TRANSIENT
                and request.remaining() > MIN_CALL_S + (error.retry_after_s or 0.0)
            )

        retrying = AsyncRetrying(
            retry=retry_if_exception(retryable),
            stop=stop_after_attempt(MAX_TRANSIENT_ATTEMPTS),
            wait=_wait,
            reraise=True,
        )
        async for attempt_state in retrying:
            with attempt_state:
                started = time.monotonic()
                timeout = request.remaining()
                if timeout < MIN_CALL_S:
                    raise UpstreamError(ErrorClass.DEADLINE, "the deadline ran out before the call")
                record = Attempt(route.name, model, route.base_url, "error", shape=(shape.value if shape else "text"))
                attempts.append(record)
                try:
                    result = await route.chat(
                        model,
                        messages,
                        response_format=fmt,
                        max_tokens=request.max_tokens,
                        temperature=request.temperature,
                        timeout_s=timeout,
                        api_key=request.api_key,
                    )
                except UpstreamError as error:
                    if error.error_class is ErrorClass.TRANSIENT and request.remaining() <= 0.1:
                        waited = time.monotonic() - started
                        error = UpstreamError(
                            ErrorClass.DEADLINE, f"no answer within {waited:.1f} s ({error.detail})", error.http_status
                        )
                    record.error_class, record.http_status = error.error_class.value, error.http_status
                    record.detail, record.latency_ms = error.detail[:300], _ms(started)
                    raise error from None
                record.outcome, record.latency_ms = "ok", _ms(started)
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    # --- local ---------------------------------------------------------------------------------------

    async def _local(self, role: str, request: Request, attempts: list[Attempt]) -> Outcome | None:
        messages = self._messages(request, Shape.PROMPTED if request.schema is not None else None)
        started = time.monotonic()
        try:
            loaded = await self.local.acquire(role, request.remaining() - MIN_CALL_S)
        except NoModelAvailable as missing:
            detail = "; ".join(f"{c.name}: {c.reason}" for c in missing.candidates)
            attempts.append(Attempt("local", f"role:{role}", "", "skipped", ErrorClass.NO_LOCAL_MODEL, detail=detail))
            return None
        except TimeoutError:
            attempts.append(
                Attempt(
                    "local",
                    f"role:{role}",
                    "",
                    "skipped",
                    ErrorClass.NO_LOCAL_MODEL,
                    latency_ms=_ms(started),
                    detail="the local model is still loading (see ListModels load_state)",
                )
            )
            return None
        local = await self.local.generate(
            role,
            messages,
            request.max_tokens,
            request.temperature,
            request.remaining(),
            schema=request.schema,
            loaded=loaded,
        )
        shape = "constrained" if local.constrained else ("prompted" if request.schema is not None else "text")
        detail = f"grammar: {local.grammar_note}; schema in the prompt instead" if local.grammar_note else ""
        record = Attempt("local", local.model, "", "ok", latency_ms=_ms(started), detail=detail, shape=shape)
        attempts.append(record)
        if local.constrained:
            constrained = self._constrained(local, request, record, attempts)
            if constrained is not None:
                return constrained

        async def reask(msgs: list[dict[str, str]]) -> ChatResult:
            again = time.monotonic()
            result = await self.local.generate(role, msgs, request.max_tokens, request.temperature, request.remaining())
            attempts.append(Attempt("local", result.model, "", "ok", latency_ms=_ms(again), shape="reask"))
            return result.result

        return await self._accept(local.result, request, Shape.PROMPTED, "local", local.model, "", attempts, reask)

    def _constrained(
        self, local: LocalResult, request: Request, record: Attempt, attempts: list[Attempt]
    ) -> Outcome | None:
        """Accept grammar-constrained output (valid by construction; still validated). A document the
        finisher could not close in time is labelled and handed to the repair path."""
        result = local.result
        try:
            value = parse_constrained(result.text, request.validator)
        except OutputInvalid as invalid:
            record.outcome, record.error_class = "invalid_output", ErrorClass.OUTPUT
            record.detail = f"constrained output {'incomplete' if not local.finished else 'invalid'}: {invalid}"
            return None
        return Outcome(
            json.dumps(value),
            "local",
            local.model,
            result.served_model,
            result.served_by,
            "",
            "CONSTRAINED",
            attempts,
            result.prompt_tokens,
            result.completion_tokens,
        )

    # --- output ----------------------------------------------------------------------------------------

    def _messages(self, request: Request, shape: Shape | None) -> list[dict[str, str]]:
        if request.schema is None or shape is Shape.JSON_SCHEMA:
            return list(request.messages)
        return [{"role": "system", "content": schema_instruction(request.schema)}, *request.messages]

    async def _accept(
        self,
        result: ChatResult,
        request: Request,
        shape: Shape | None,
        provider: str,
        model: str,
        route: str,
        attempts: list[Attempt],
        reask: Callable[[list[dict[str, str]]], Any],
    ) -> Outcome | None:
        def outcome(text: str, stage: str, res: ChatResult, extra: ChatResult | None = None) -> Outcome:
            return Outcome(
                text,
                provider,
                model,
                res.served_model,
                res.served_by,
                route,
                stage,
                attempts,
                res.prompt_tokens + (extra.prompt_tokens if extra else 0),
                res.completion_tokens + (extra.completion_tokens if extra else 0),
            )

        if request.schema is None:
            return outcome(result.text, "TEXT", result)
        stage = {Shape.JSON_SCHEMA: "NATIVE_SCHEMA", Shape.JSON_OBJECT: "JSON_OBJECT"}.get(shape, "PROMPTED")  # type: ignore[arg-type]
        try:
            parsed = parse(result.text, request.validator)
            return outcome(json.dumps(parsed.value), "REPAIRED" if parsed.repaired else stage, result)
        except OutputInvalid as invalid:
            attempts[-1].outcome, attempts[-1].error_class = "invalid_output", ErrorClass.OUTPUT
            attempts[-1].detail = "; ".join(filter(None, (attempts[-1].detail, str(invalid))))[:400]
            problem = str(invalid)
        if request.remaining() < MIN_CALL_S:
            return None
        messages = [
            *self._messages(request, shape),
            {"role": "assistant", "content": result.text[:4000]},
            reask_message(problem),
        ]
        try:
            second = await reask(messages)
        except (UpstreamError, NoModelAvailable):
            return None
        try:
            parsed = parse(second.text, request.validator)
        except OutputInvalid as invalid:
            attempts[-1].outcome, attempts[-1].error_class = "invalid_output", ErrorClass.OUTPUT
            attempts[-1].detail = f"after re-ask: {invalid}"
            return None
        return outcome(json.dumps(parsed.value), "REASKED", second, result)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 2)
