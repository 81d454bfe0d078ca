"""IndexClient: how other services (the gateway, the workflow) call the index.

Background writes never raise because the index is not ready: the service queues them durably
whether or not it is ready. If the service cannot be reached at all, the result says so (and it is
logged at WARNING with a reason) instead of raising into the caller's request. Reads and critical
writes raise RemoteError with the reason (INDEX_NOT_READY, ...).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from inkwell.index.v1 import index_service_pb2 as pb
from inkwell.index.v1 import index_service_pb2_grpc as pb_grpc
from libs.runtime.client import call_metadata, call_timeout
from libs.runtime.errors import RemoteError, from_rpc_error

log = logging.getLogger("inkwell.index.client")


@dataclass(frozen=True)
class EnqueueResult:
    accepted: bool
    job_id: str = ""
    reason: str = ""
    message: str = ""
    code: str = ""  # the gRPC status name when refused (INVALID_ARGUMENT is not worth retrying)


def _documents(documents: Sequence[Mapping[str, Any]]) -> list[pb.Document]:
    return [
        pb.Document(
            id=str(d["id"]), text=str(d["text"]), metadata={k: str(v) for k, v in (d.get("metadata") or {}).items()}
        )
        for d in documents
    ]


def job_dict(job: pb.Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "state": pb.JobState.Name(job.state).removeprefix("JOB_STATE_").lower(),
        "reason": job.reason or None,
        "message": job.message or None,
        "documents": job.documents,
        "created_at": job.created_at.ToJsonString() if job.HasField("created_at") else None,
        "finished_at": job.finished_at.ToJsonString() if job.HasField("finished_at") else None,
    }


def readiness_dict(readiness: pb.Readiness) -> dict[str, Any]:
    return {
        "state": pb.ReadinessState.Name(readiness.state).removeprefix("READINESS_STATE_"),
        "reason": readiness.reason or None,
        "message": readiness.message or None,
        "model": readiness.model or None,
        "progress": round(readiness.progress, 3),
        "queued_jobs": readiness.queued_jobs,
        "oldest_queued_at": readiness.oldest_queued_at.ToJsonString()
        if readiness.HasField("oldest_queued_at")
        else None,
    }


class IndexClient:
    def __init__(self, channel: grpc.aio.Channel, timeout_s: float = 5.0) -> None:
        self.stub = pb_grpc.IndexServiceStub(channel)
        self.timeout_s = timeout_s

    async def index_background(self, identity_token: str, documents: Sequence[Mapping[str, Any]]) -> EnqueueResult:
        request = pb.IndexDocumentsRequest(documents=_documents(documents), mode=pb.WRITE_MODE_BACKGROUND)
        try:
            response = await self.stub.IndexDocuments(
                request, timeout=call_timeout(self.timeout_s), metadata=call_metadata(identity_token)
            )
        except grpc.aio.AioRpcError as exc:
            remote = from_rpc_error(exc)
            log.warning(
                "could not queue documents for indexing",
                extra={"reason": remote.reason, "code": remote.code.name, "documents": len(documents)},
            )
            return EnqueueResult(False, reason=remote.reason, message=remote.message, code=remote.code.name)
        return EnqueueResult(True, job_id=response.job.id)

    async def _call(self, method: Any, request: Any, identity_token: str, timeout_s: float | None) -> Any:
        try:
            timeout = call_timeout(timeout_s or self.timeout_s)
            return await method(request, timeout=timeout, metadata=call_metadata(identity_token))
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None

    async def index_critical(
        self, identity_token: str, documents: Sequence[Mapping[str, Any]], timeout_s: float | None = None
    ) -> pb.Job:
        request = pb.IndexDocumentsRequest(documents=_documents(documents), mode=pb.WRITE_MODE_CRITICAL)
        return (await self._call(self.stub.IndexDocuments, request, identity_token, timeout_s)).job

    async def delete(self, identity_token: str, ids: Sequence[str], critical: bool = False) -> pb.Job:
        mode = pb.WRITE_MODE_CRITICAL if critical else pb.WRITE_MODE_BACKGROUND
        request = pb.DeleteDocumentsRequest(ids=list(ids), mode=mode)
        return (await self._call(self.stub.DeleteDocuments, request, identity_token, None)).job

    async def search(
        self,
        identity_token: str,
        query: str,
        limit: int = 10,
        filters: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> list[pb.SearchHit]:
        request = pb.SearchRequest(query=query, limit=limit, filters=dict(filters or {}))
        return list((await self._call(self.stub.Search, request, identity_token, timeout_s)).hits)

    async def job(self, identity_token: str, job_id: str) -> pb.Job:
        return (await self._call(self.stub.GetJob, pb.GetJobRequest(id=job_id), identity_token, None)).job

    async def readiness(self, identity_token: str) -> pb.Readiness:
        return (await self._call(self.stub.GetReadiness, pb.GetReadinessRequest(), identity_token, None)).readiness


__all__ = ["EnqueueResult", "IndexClient", "RemoteError", "job_dict", "readiness_dict"]
