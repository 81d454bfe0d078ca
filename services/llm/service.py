"""LlmService: structured and plain generation with provenance, and model availability."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import grpc
from google.protobuf import duration_pb2

from inkwell.llm.v1 import llm_service_pb2 as pb
from inkwell.llm.v1 import llm_service_pb2_grpc as pb_grpc
from inkwell.models.v1 import models_service_pb2 as models_pb
from libs.model_registry.registry import ModelRegistry
from libs.runtime import context as request_context
from libs.runtime.errors import ServiceError
from libs.runtime.metrics import LLM_ATTEMPTS, LLM_REPLIES
from libs.runtime.protoenum import from_enum, to_enum
from services.llm.router import AllFailed, Attempt, Outcome, Request, Router
from services.llm.structured import SchemaInvalid, compile_schema
from services.llm.usage import UsageRecorder, UsageStore

REPLY_MARGIN_S = 0.3
log = logging.getLogger("inkwell.llm")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["LlmService"].full_name
MAX_MESSAGES = 100
MAX_CONTENT = 200_000


def _invalid(field: str, problem: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_INVALID", f"{field}: {problem}", {"field": field})


def _attempt_proto(a: Attempt) -> pb.Attempt:
    latency = duration_pb2.Duration()
    latency.FromNanoseconds(int(a.latency_ms * 1e6))
    return pb.Attempt(
        provider=a.provider,
        model=a.model,
        route=a.route,
        outcome=to_enum(pb.AttemptOutcome, a.outcome),
        error_class=to_enum(pb.ErrorClass, a.error_class),
        http_status=a.http_status,
        latency=latency,
        detail=a.detail,
        shape=to_enum(pb.RequestShape, a.shape),
    )


def _provenance(purpose: str, outcome: Outcome | None, attempts: list[Attempt]) -> pb.Provenance:
    if outcome is None:
        return pb.Provenance(purpose=purpose, attempts=[_attempt_proto(a) for a in attempts])
    return pb.Provenance(
        provider=outcome.provider,
        requested_model=outcome.requested_model,
        served_model=outcome.served_model,
        served_by=outcome.served_by,
        route=outcome.route,
        output_stage=f"OUTPUT_STAGE_{outcome.stage}",
        attempts=[_attempt_proto(a) for a in attempts],
        purpose=purpose,
    )


class LlmServicer(pb_grpc.LlmServiceServicer):
    def __init__(self, router: Router, registry: ModelRegistry, usage: UsageStore, default_timeout_s: float) -> None:
        self.router = router
        self.registry = registry
        self.usage = usage
        self.recorder = UsageRecorder(usage)
        self.default_timeout_s = default_timeout_s

    def _request(
        self,
        request: pb.GenerateStructuredRequest | pb.GenerateRequest,
        purpose_default: str,
        servicer_context: grpc.aio.ServicerContext,
    ) -> Request:
        if not request.messages or len(request.messages) > MAX_MESSAGES:
            raise _invalid("messages", f"1 to {MAX_MESSAGES} messages")
        messages = []
        for position, message in enumerate(request.messages):
            role = from_enum(pb.Role, message.role, lower=True) if message.role in pb.Role.values() else ""
            if not role:
                raise _invalid(f"messages[{position}].role", "ROLE_SYSTEM, ROLE_USER or ROLE_ASSISTANT")
            if len(message.content) > MAX_CONTENT:
                raise _invalid(f"messages[{position}].content", f"at most {MAX_CONTENT} characters")
            messages.append({"role": role, "content": message.content})
        purpose = request.purpose or purpose_default
        if purpose not in self.router.catalog.purposes:
            raise _invalid("purpose", f"one of {sorted(self.router.catalog.purposes)}")
        if not 0 <= request.temperature <= 2:
            raise _invalid("temperature", "between 0 and 2")
        if not 0 <= request.max_tokens <= 32_768:
            raise _invalid("max_tokens", "between 1 and 32768 (0 means 1024)")
        remaining = servicer_context.time_remaining()
        budget = (
            self.default_timeout_s
            if remaining is None or remaining > 86_400
            else min(remaining, self.default_timeout_s)
        )
        return Request(
            messages=messages,
            purpose=purpose,
            max_tokens=request.max_tokens or 1024,
            temperature=request.temperature,
            # Leave time to send the reply (with every attempt) before the caller's deadline.
            deadline=time.monotonic() + budget - min(REPLY_MARGIN_S, budget / 10),
            api_key=request.api_key or None,
        )

    def _record(self, request: Request, attempts: list[Attempt], outcome: Outcome | None, started: float) -> None:
        """Metrics and the per-user usage record for one request (written off the reply path)."""
        for attempt in attempts:
            LLM_ATTEMPTS.labels(attempt.provider, attempt.model, attempt.outcome, attempt.error_class).inc()
        LLM_REPLIES.labels(request.purpose, "ok" if outcome is not None else "failed").inc()
        ctx = request_context.get()
        user = ctx.identity.user_id if ctx and ctx.identity else "-"
        latency = (time.monotonic() - started) * 1000
        if outcome is None:
            self.recorder.add(user, request.purpose, "-", "-", "failed", 0, 0, latency)
        else:
            self.recorder.add(
                user,
                request.purpose,
                outcome.provider,
                outcome.requested_model,
                "ok",
                outcome.prompt_tokens,
                outcome.completion_tokens,
                latency,
            )

    async def _route(self, routed: Request, criticality: int) -> Outcome | AllFailed:
        """Run the purpose's chain; a CRITICAL request that gets nothing valid is refused here."""
        started = time.monotonic()
        try:
            outcome = await self.router.run(routed)
        except AllFailed as failure:
            self._record(routed, failure.attempts, None, started)
            error = self._refuse(routed, failure, criticality != pb.CRITICALITY_BEST_EFFORT)
            if error is not None:
                raise error from None
            return failure
        self._record(routed, outcome.attempts, outcome, started)
        return outcome

    def _refuse(self, request: Request, failure: AllFailed, critical: bool) -> ServiceError | None:
        log.warning(
            "no provider produced valid output",
            extra={
                "reason": "ALL_PROVIDERS_FAILED",
                "first_cause": failure.first_cause,
                "purpose": request.purpose,
                "attempts": [a.summary() for a in failure.attempts],
            },
        )
        if not critical:
            return None
        attempts = json.dumps([a.__dict__ for a in failure.attempts])[:6000]
        return ServiceError(
            grpc.StatusCode.UNAVAILABLE,
            "ALL_PROVIDERS_FAILED",
            f"no provider produced valid output for {request.purpose!r}; first cause: {failure.first_cause}",
            {"firstCause": failure.first_cause, "purpose": request.purpose, "attempts": attempts},
            retry_after_s=5.0,
        )

    async def GenerateStructured(
        self, request: pb.GenerateStructuredRequest, context: grpc.aio.ServicerContext
    ) -> pb.GenerateStructuredResponse:
        routed = self._request(request, "structured", context)
        try:
            routed.schema, routed.validator = compile_schema(request.json_schema)
        except SchemaInvalid as invalid:
            raise _invalid("json_schema", str(invalid)) from None
        outcome = await self._route(routed, request.criticality)
        if isinstance(outcome, AllFailed):
            return pb.GenerateStructuredResponse(
                degraded=True,
                degraded_reasons=outcome.reasons,
                provenance=_provenance(routed.purpose, None, outcome.attempts),
            )
        return pb.GenerateStructuredResponse(
            json=outcome.text,
            provenance=_provenance(routed.purpose, outcome, outcome.attempts),
            usage=pb.Usage(
                prompt_tokens=outcome.prompt_tokens,
                completion_tokens=outcome.completion_tokens,
                total_tokens=outcome.prompt_tokens + outcome.completion_tokens,
            ),
        )

    async def Generate(self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext) -> pb.GenerateResponse:
        routed = self._request(request, "agent", context)
        outcome = await self._route(routed, request.criticality)
        if isinstance(outcome, AllFailed):
            return pb.GenerateResponse(
                degraded=True,
                degraded_reasons=outcome.reasons,
                provenance=_provenance(routed.purpose, None, outcome.attempts),
            )
        return pb.GenerateResponse(
            text=outcome.text,
            provenance=_provenance(routed.purpose, outcome, outcome.attempts),
            usage=pb.Usage(
                prompt_tokens=outcome.prompt_tokens,
                completion_tokens=outcome.completion_tokens,
                total_tokens=outcome.prompt_tokens + outcome.completion_tokens,
            ),
        )

    async def GetUsage(self, request: pb.GetUsageRequest, context: grpc.aio.ServicerContext) -> pb.GetUsageResponse:
        ctx = request_context.get()
        assert ctx is not None and ctx.identity is not None, "the runtime interceptor verifies identity"
        since = request.since.ToSeconds() if request.HasField("since") else 0
        until = request.until.ToSeconds() if request.HasField("until") else time.time() + 1
        await self.recorder.flush()
        rows = await asyncio.to_thread(self.usage.summary, ctx.identity.user_id, since, until)
        return pb.GetUsageResponse(
            rows=[pb.UsageRow(**{**row, "outcome": to_enum(pb.UsageOutcome, row["outcome"])}) for row in rows]
        )

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        remote = []
        for name, spec in self.router.catalog.remote_models.items():
            route = self.router.routes[spec.provider]
            unavailable = route.model_unavailable(spec.model)
            state: str
            if route.state.value in ("ROUTE_NOT_FOUND", "CREDENTIALS", "NOT_CONFIGURED", "UNREACHABLE"):
                state, detail = route.state.value, route.detail
            elif unavailable:
                state, detail = "MODEL_UNAVAILABLE", unavailable
            else:
                state, detail = ("AVAILABLE" if route.state.value == "OK" else "UNKNOWN"), route.detail
            info = route.models.get(spec.model.split(":", 1)[0])
            remote.append(
                pb.RemoteModelStatus(
                    name=name,
                    provider=spec.provider,
                    model=spec.model,
                    route=route.base_url,
                    state=to_enum(pb.RemoteModelState, state),
                    detail=detail,
                    supports_structured_output=bool(info and info.structured),
                )
            )
        local = [
            pb.LocalModelStatus(
                name=row.name,
                roles=list(row.roles),
                download_state=to_enum(models_pb.DownloadState, row.download_state),
                load_state=to_enum(models_pb.LoadState, row.load_state),
                reason=row.reason,
            )
            for row in self.registry.rows()
            if row.kind == "local" and row.task == "text-generation"
        ]
        return pb.ListModelsResponse(remote=remote, local=local)
