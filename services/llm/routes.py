"""Remote routes: one OpenAI-compatible provider each (the Hugging Face router, OpenAI, vLLM...).

Each route keeps: whether the route itself exists (preflight `GET {base_url}/models`, at startup
and every few minutes), which configured models its catalog lists and whether they support
structured output, which (model, shape) pairs it refused, and which models it said are
unavailable (cached for a few minutes, never retried meanwhile).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import openai

from services.llm.classify import ErrorClass, UpstreamError, classify
from services.llm.structured import Shape

log = logging.getLogger("inkwell.llm.routes")


class RouteState(StrEnum):
    UNKNOWN = "UNKNOWN"
    OK = "OK"
    ROUTE_NOT_FOUND = "ROUTE_NOT_FOUND"
    CREDENTIALS = "CREDENTIALS"
    UNREACHABLE = "UNREACHABLE"
    NOT_CONFIGURED = "NOT_CONFIGURED"


@dataclass
class ModelInfo:
    live: bool
    structured: bool | None  # None: the catalog does not say


@dataclass
class ChatResult:
    text: str
    served_model: str
    served_by: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


def base_model_id(model: str) -> str:
    """`org/model:provider` and `org/model:fastest` name the same catalog entry as `org/model`."""
    return model.split(":", 1)[0]


@dataclass
class Route:
    name: str
    base_url: str
    api_key: str
    concurrency: int = 8
    unavailable_ttl_s: float = 300.0
    log_changes: bool = True  # False for one-off checks (doctor): their findings are reported, not logged
    state: RouteState = RouteState.UNKNOWN
    detail: str = ""
    checked_at: float = 0.0
    models: dict[str, ModelInfo] = field(default_factory=dict)
    unsupported_shapes: dict[str, set[Shape]] = field(default_factory=dict)
    unavailable_until: dict[str, tuple[float, str]] = field(default_factory=dict)
    _client: openai.AsyncOpenAI | None = None
    _semaphore: asyncio.Semaphore | None = None
    _preflight: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        if not self.api_key:
            self.state = RouteState.NOT_CONFIGURED
            self.detail = f"no API key for provider {self.name!r}"

    @property
    def client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            # max_retries=0: the router is the one retry layer.
            self._client = openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key or "unset", max_retries=0)
        return self._client

    @property
    def semaphore(self) -> asyncio.Semaphore:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.concurrency)
        return self._semaphore

    # --- availability ----------------------------------------------------------------------------

    def usable(self, api_key: str | None) -> bool:
        if self.state is RouteState.NOT_CONFIGURED:
            return bool(api_key)
        return self.state not in (RouteState.ROUTE_NOT_FOUND, RouteState.CREDENTIALS)

    def model_unavailable(self, model: str) -> str | None:
        entry = self.unavailable_until.get(model)
        if entry and entry[0] > time.monotonic():
            return entry[1]
        info = self.models.get(base_model_id(model))
        if self.state is RouteState.OK and self.models and info is None:
            return f"model {model!r} is not in the catalog of {self.base_url}"
        if info is not None and not info.live:
            return f"model {model!r} has no live provider on {self.base_url}"
        return None

    def mark_unavailable(self, model: str, detail: str) -> None:
        self.unavailable_until[model] = (time.monotonic() + self.unavailable_ttl_s, detail[:300])

    def shapes(self, model: str) -> list[Shape]:
        refused = self.unsupported_shapes.get(model, set())
        info = self.models.get(base_model_id(model))
        order = [Shape.JSON_SCHEMA, Shape.JSON_OBJECT, Shape.PROMPTED]
        if info is not None and info.structured is False:
            order = [Shape.PROMPTED]
        return [shape for shape in order if shape not in refused]

    def refuse_shape(self, model: str, shape: Shape) -> None:
        self.unsupported_shapes.setdefault(model, set()).add(shape)

    async def preflight(self, timeout_s: float = 10.0) -> None:
        """GET {base_url}/models once (single flight): does the route exist, what does it serve?"""
        if self._preflight is None:
            self._preflight = asyncio.create_task(self._run_preflight(timeout_s), name=f"preflight-{self.name}")
        task = self._preflight
        try:
            await asyncio.shield(task)
        finally:
            if task.done():
                self._preflight = None

    async def _run_preflight(self, timeout_s: float) -> None:
        if not self.api_key:
            return
        previous = self.state
        try:
            raw = await self.client.with_options(timeout=timeout_s).models.with_raw_response.list()
            document = raw.http_response.json()
            self.models = _catalog(document)
            self.state, self.detail = RouteState.OK, f"{len(self.models)} models listed"
        except openai.APIStatusError as error:
            if error.status_code == 404:
                self.state = RouteState.ROUTE_NOT_FOUND
                self.detail = f"{self.base_url}/models answered 404: the base URL is wrong for provider {self.name!r}"
            elif error.status_code in (401, 403):
                self.state = RouteState.CREDENTIALS
                self.detail = f"{self.base_url} refused the API key (HTTP {error.status_code})"
            else:
                self.state, self.detail = RouteState.UNREACHABLE, str(classify(error))
        except (openai.APIConnectionError, openai.APITimeoutError) as error:
            self.state, self.detail = RouteState.UNREACHABLE, str(classify(error))
        except Exception as error:  # a malformed catalog is reported, not fatal
            self.state, self.detail = RouteState.UNREACHABLE, f"catalog unreadable: {type(error).__name__}: {error}"
        self.checked_at = time.time()
        if self.state is not previous and self.log_changes:
            level = (
                logging.ERROR
                if self.state in (RouteState.ROUTE_NOT_FOUND, RouteState.CREDENTIALS)
                else (logging.WARNING if self.state is not RouteState.OK else logging.INFO)
            )
            kind = "configuration error" if level == logging.ERROR else "route state"
            log.log(
                level,
                f"{kind}: provider {self.name}: {self.detail}",
                extra={"reason": self.state.value, "provider": self.name, "route": self.base_url},
            )
        if self.state is RouteState.OK:
            self.unsupported_shapes.clear()

    # --- calls ---------------------------------------------------------------------------------------

    async def chat(
        self,
        model: str,
        messages: list[dict[str, str]],
        *,
        response_format: dict[str, Any] | None,
        max_tokens: int,
        temperature: float,
        timeout_s: float,
        api_key: str | None,
    ) -> ChatResult:
        client = self.client.with_options(timeout=timeout_s)
        if api_key:
            client = client.with_options(api_key=api_key)
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if response_format is not None:
            kwargs["response_format"] = response_format
        async with self.semaphore:
            try:
                raw = await client.chat.completions.with_raw_response.create(**kwargs)
            except Exception as error:
                raise classify(error) from None
        completion = raw.parse()
        if not completion.choices:
            raise UpstreamError(ErrorClass.OUTPUT, "the provider returned no choices")
        usage = completion.usage
        return ChatResult(
            text=completion.choices[0].message.content or "",
            served_model=completion.model or model,
            served_by=raw.headers.get("x-inference-provider", ""),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )


def _catalog(document: Any) -> dict[str, ModelInfo]:
    models: dict[str, ModelInfo] = {}
    for entry in document.get("data", []) if isinstance(document, dict) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        providers = entry.get("providers")
        if isinstance(providers, list) and providers:
            live = [p for p in providers if isinstance(p, dict) and p.get("status", "live") == "live"]
            flags = [p.get("supports_structured_output") for p in live if "supports_structured_output" in p]
            structured = any(flags) if flags else None
            models[entry["id"]] = ModelInfo(live=bool(live), structured=structured)
        else:
            models[entry["id"]] = ModelInfo(live=True, structured=None)
    return models
