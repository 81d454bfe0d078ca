"""The one server interceptor every Inkwell service runs.

It starts the request context (request id, trace), checks the internal identity token where the
method needs one, and turns every failure into google.rpc.Status with exactly one ErrorInfo:
ServiceError keeps its reason; anything else is a defect, logged with its stack as INTERNAL_DEFECT.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from libs.runtime import context
from libs.runtime.client import NO_DEADLINE_S
from libs.runtime.errors import ServiceError
from libs.runtime.identity import InternalTokenVerifier, bearer_from_metadata
from libs.runtime.metrics import RPC_LATENCY

log = logging.getLogger("inkwell.rpc")

# Failures caused by the caller: logged at INFO (the caller reports them), not as our warnings.
CLIENT_ERRORS = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)

OPEN_METHOD_PREFIXES = (
    "/grpc.health.v1.Health/",
    # Operator views without user data: readiness and model status, like health.
    "/inkwell.index.v1.IndexService/GetReadiness",
    "/inkwell.index.v1.IndexService/WaitUntilReady",
    "/inkwell.models.v1.ModelsService/ListModels",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


def _metadata_value(metadata: Any, key: str) -> str | None:
    for k, v in metadata or ():
        if k == key and isinstance(v, str):
            return v
    return None


class RuntimeInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, domain: str, verifier: InternalTokenVerifier | None = None) -> None:
        self.domain = domain
        self.verifier = verifier

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method: str = handler_call_details.method
        open_method = method.startswith(OPEN_METHOD_PREFIXES)
        needs_identity = self.verifier is not None and not open_method
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, method, needs_identity, open_method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, method, needs_identity),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(handler.stream_unary, method, needs_identity, open_method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.stream_stream_rpc_method_handler(
            self._wrap_stream(handler.stream_stream, method, needs_identity),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _begin(self, servicer_context: grpc.aio.ServicerContext, needs_identity: bool) -> None:
        metadata = servicer_context.invocation_metadata()
        remaining = servicer_context.time_remaining()
        ctx = context.start(
            _metadata_value(metadata, context.REQUEST_ID_HEADER),
            _metadata_value(metadata, context.TRACEPARENT_HEADER),
            remaining if remaining is not None and remaining < NO_DEADLINE_S else None,
        )
        if needs_identity:
            assert self.verifier is not None
            ctx.identity = await self.verifier.verify(bearer_from_metadata(metadata))

    async def _fail(self, servicer_context: grpc.aio.ServicerContext, method: str, exc: BaseException) -> None:
        if isinstance(exc, ServiceError):
            log.log(
                logging.INFO if exc.code in CLIENT_ERRORS else logging.WARNING,
                "rpc failed",
                extra={"method": method, "reason": exc.reason, "code": exc.code.name, "detail": exc.message},
            )
            error = exc
        else:
            log.error("rpc defect", exc_info=exc, extra={"method": method, "reason": "INTERNAL_DEFECT"})
            ctx = context.get()
            rid = ctx.request_id if ctx else "?"
            error = ServiceError(
                grpc.StatusCode.INTERNAL,
                "INTERNAL_DEFECT",
                f"internal error in {self.domain}; see its log for request id {rid}",
            )
        await servicer_context.abort_with_status(error.to_status(self.domain))

    def _wrap_unary(self, behavior: Any, method: str, needs_identity: bool, quiet: bool) -> Any:
        async def wrapper(request: Any, servicer_context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            code = "OK"
            try:
                await self._begin(servicer_context, needs_identity)
                result = behavior(request, servicer_context)
                if inspect.isawaitable(result):
                    result = await result
                if not quiet:
                    log.debug("rpc ok", extra={"method": method, "ms": round((time.perf_counter() - started) * 1e3, 2)})
                return result
            except (asyncio.CancelledError, grpc.aio.AbortError):
                code = "CANCELLED"
                raise
            except Exception as exc:
                code = exc.code.name if isinstance(exc, ServiceError) else "INTERNAL"
                await self._fail(servicer_context, method, exc)
            finally:
                if not quiet:
                    service, _, name = method.lstrip("/").rpartition("/")
                    RPC_LATENCY.labels(service, name, code).observe(time.perf_counter() - started)

        return wrapper

    def _wrap_stream(self, behavior: Any, method: str, needs_identity: bool) -> Any:
        async def wrapper(request: Any, servicer_context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                await self._begin(servicer_context, needs_identity)
                async for item in behavior(request, servicer_context):
                    yield item
            except (asyncio.CancelledError, grpc.aio.AbortError):
                raise
            except Exception as exc:
                await self._fail(servicer_context, method, exc)

        return wrapper
