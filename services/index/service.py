"""IndexService: readiness RPCs, durable background writes, critical writes, scoped reads."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import timestamp_pb2

from inkwell.index.v1 import index_service_pb2 as pb
from inkwell.index.v1 import index_service_pb2_grpc as pb_grpc
from libs.runtime import context
from libs.runtime.errors import ServiceError
from libs.runtime.metrics import INDEX_DRAINED, INDEX_QUEUE
from services.index import storage, validation
from services.index.engine import IndexEngine
from services.index.readiness import Readiness, Snapshot
from services.index.store import IndexStore, Job

log = logging.getLogger("inkwell.index")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["IndexService"].full_name
RETRY_AFTER_S = 2.0
DEADLINE_MARGIN_S = 0.05


def _timestamp(seconds: float | None) -> timestamp_pb2.Timestamp | None:
    if not seconds:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def job_to_proto(job: Job) -> pb.Job:
    return pb.Job(
        id=job.id,
        state=f"JOB_STATE_{job.state.upper()}",
        reason=job.reason,
        message=job.message,
        documents=job.documents,
        created_at=_timestamp(job.created_at),
        finished_at=_timestamp(job.finished_at),
    )


def _user() -> str:
    ctx = context.get()
    assert ctx is not None and ctx.identity is not None, "the runtime interceptor verifies identity"
    return ctx.identity.user_id


class IndexCore:
    """State shared by the servicer and the drain worker."""

    def __init__(self, store: IndexStore, readiness: Readiness, batch_documents: int, max_wait_s: float) -> None:
        self.store = store
        self.readiness = readiness
        self.batch_documents = batch_documents
        self.max_wait_s = max_wait_s
        self.engine: IndexEngine | None = None
        self.wake = asyncio.Event()
        self._done: dict[str, asyncio.Event] = {}
        self.drained_documents = 0

    def budget(self, servicer_context: grpc.aio.ServicerContext) -> float:
        remaining = servicer_context.time_remaining()
        if remaining is None or remaining > 86_400:
            return self.max_wait_s
        return max(0.0, min(remaining, self.max_wait_s) - DEADLINE_MARGIN_S)

    def not_ready(self) -> ServiceError:
        snap = self.readiness.snapshot
        return ServiceError(
            grpc.StatusCode.UNAVAILABLE,
            "INDEX_NOT_READY",
            f"the index is {snap.state.value.lower()}" + (f" ({snap.reason}: {snap.message})" if snap.reason else ""),
            {"state": snap.state.value, "cause": snap.reason, "progress": f"{snap.progress:.2f}"},
            retry_after_s=RETRY_AFTER_S,
        )

    async def require_engine(self, servicer_context: grpc.aio.ServicerContext) -> IndexEngine:
        if not await self.readiness.wait_serving(self.budget(servicer_context)) or self.engine is None:
            raise self.not_ready()
        return self.engine

    async def enqueue(self, kind: str, payload: list[Any]) -> Job:
        if self.readiness.snapshot.reason == "STORAGE_NOT_WRITABLE":
            raise storage.refusal(self.readiness.snapshot.message)
        try:
            job = await asyncio.to_thread(self.store.enqueue, _user(), kind, payload)
        except Exception as exc:
            problem = storage.unwritable_reason(exc)
            if problem is None:
                raise
            await self.readiness.storage(problem)
            raise storage.refusal(problem) from None
        self.wake.set()
        return job

    async def watch_storage(self, directory: Path, interval_s: float) -> None:
        """Probe the storage at start and every `interval_s`: NOT_SERVING while it cannot be written."""
        while True:
            await self.readiness.storage(await asyncio.to_thread(storage.probe, directory))
            await asyncio.sleep(interval_s)

    async def wait_done(self, job: Job, timeout_s: float) -> Job:
        event = self._done.setdefault(job.id, asyncio.Event())
        try:
            current = await asyncio.to_thread(self.store.job, job.user_id, job.id)
            if current is not None and current.state == "queued":
                try:
                    async with asyncio.timeout(timeout_s):
                        await event.wait()
                except TimeoutError:
                    raise ServiceError(
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        "INDEX_WRITE_PENDING",
                        "the write is stored and queued but was not indexed before the deadline; "
                        "it will be indexed, check it with GetJob",
                        {"jobId": job.id},
                    ) from None
            final = await asyncio.to_thread(self.store.job, job.user_id, job.id)
            assert final is not None
            return final
        finally:
            self._done.pop(job.id, None)

    def finished(self, jobs: list[Job]) -> None:
        for job in jobs:
            event = self._done.get(job.id)
            if event is not None:
                event.set()

    async def write(self, kind: str, payload: list[Any], mode: int, servicer_context: grpc.aio.ServicerContext) -> Job:
        if mode == pb.WRITE_MODE_CRITICAL:
            budget = self.budget(servicer_context)
            started = time.monotonic()
            await self.require_engine(servicer_context)
            job = await self.enqueue(kind, payload)
            return await self.wait_done(job, budget - (time.monotonic() - started))
        return await self.enqueue(kind, payload)


async def drain_forever(core: IndexCore) -> None:
    """Move queued jobs into the store's documents and the users' indexes, batch by batch."""
    while True:
        await core.readiness.wait_serving(float("inf"))
        engine = core.engine
        assert engine is not None
        try:
            jobs = await asyncio.to_thread(core.store.queued, core.batch_documents)
            if not jobs:
                await engine.run(engine.save_dirty)  # idle: persist what the throttle held back
                core.wake.clear()
                try:
                    async with asyncio.timeout(1.0):
                        await core.wake.wait()
                except TimeoutError:
                    pass
                continue
            users = await asyncio.to_thread(core.store.apply, jobs)
            await engine.run(engine.sync_users, users)
            await asyncio.to_thread(core.store.mark_done, jobs)
            core.drained_documents += sum(job.documents for job in jobs)
            INDEX_DRAINED.inc(sum(job.documents for job in jobs))
            INDEX_QUEUE.set((await asyncio.to_thread(core.store.queue_stats))[0])
            core.finished(jobs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            problem = storage.unwritable_reason(exc)
            if problem is not None:  # stays queued; the storage probe says when to go on
                await core.readiness.storage(problem)
                await asyncio.sleep(1.0)
                continue
            log.exception(
                "indexing batch failed; it stays queued and is retried", extra={"reason": "INDEX_DRAIN_FAILED"}
            )
            await asyncio.sleep(1.0)


class IndexServicer(pb_grpc.IndexServiceServicer):
    def __init__(self, core: IndexCore) -> None:
        self.core = core

    async def _readiness(self) -> pb.Readiness:
        snap: Snapshot = self.core.readiness.snapshot
        queued, oldest = await asyncio.to_thread(self.core.store.queue_stats)
        INDEX_QUEUE.set(queued)
        return pb.Readiness(
            state=f"READINESS_STATE_{snap.state.value}",
            reason=snap.reason,
            message=snap.message,
            model=snap.model,
            progress=snap.progress,
            queued_jobs=queued,
            oldest_queued_at=_timestamp(oldest),
        )

    async def GetReadiness(
        self, request: pb.GetReadinessRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetReadinessResponse:
        return pb.GetReadinessResponse(readiness=await self._readiness())

    async def WaitUntilReady(
        self, request: pb.WaitUntilReadyRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WaitUntilReadyResponse]:
        async for _ in self.core.readiness.changes():
            yield pb.WaitUntilReadyResponse(readiness=await self._readiness())

    async def IndexDocuments(
        self, request: pb.IndexDocumentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.IndexDocumentsResponse:
        documents = validation.documents(request.documents)
        job = await self.core.write("upsert", documents, request.mode, context)
        return pb.IndexDocumentsResponse(job=job_to_proto(job))

    async def DeleteDocuments(
        self, request: pb.DeleteDocumentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteDocumentsResponse:
        ids = validation.ids(request.ids)
        job = await self.core.write("delete", ids, request.mode, context)
        return pb.DeleteDocumentsResponse(job=job_to_proto(job))

    async def GetJob(self, request: pb.GetJobRequest, context: grpc.aio.ServicerContext) -> pb.GetJobResponse:
        job = await asyncio.to_thread(self.core.store.job, _user(), request.id)
        if job is None:
            raise ServiceError(grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND", "no such job for this user")
        return pb.GetJobResponse(job=job_to_proto(job))

    async def Search(self, request: pb.SearchRequest, context: grpc.aio.ServicerContext) -> pb.SearchResponse:
        query = validation.query(request.query)
        limit = validation.limit(request.limit)
        filters = dict(request.filters)
        validation.check_metadata("filters", filters)
        engine = await self.core.require_engine(context)
        hits = await engine.run(engine.search, _user(), query, limit, filters)
        return pb.SearchResponse(
            hits=[pb.SearchHit(id=h.id, text=h.text, score=h.score, metadata=h.metadata) for h in hits]
        )

    async def Similarity(
        self, request: pb.SimilarityRequest, context: grpc.aio.ServicerContext
    ) -> pb.SimilarityResponse:
        query = validation.query(request.query)
        texts = validation.texts(request.texts)
        engine = await self.core.require_engine(context)
        return pb.SimilarityResponse(scores=await engine.run(engine.similarity, query, texts))
