"""/api/index: the frontend's way into the semantic index (writes are background by default)."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gateway.errors import ApiError
from gateway.state import CurrentUser, GatewayState
from libs.clients.index import job_dict, readiness_dict
from libs.runtime.errors import RemoteError

router = APIRouter(prefix="/api/index", tags=["index"])


class DocumentIn(BaseModel):
    id: str = Field(min_length=1, max_length=256)
    text: str = Field(min_length=1, max_length=100_000)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=32)


class IndexRequest(BaseModel):
    documents: list[DocumentIn] = Field(min_length=1, max_length=1000)
    mode: Literal["background", "critical"] = "background"


def _api_error(error: RemoteError) -> ApiError:
    return ApiError.from_remote(error, "index")


@router.post("/documents", summary="Index documents (background: queued durably, 202; critical: indexed, 200)")
async def index_documents(body: IndexRequest, user: CurrentUser, request: Request) -> JSONResponse:
    index = GatewayState.of(request).index
    documents = [d.model_dump() for d in body.documents]
    if body.mode == "background":
        result = await index.index_background(user.internal_token, documents)
        if not result.accepted:
            raise ApiError(
                503,
                result.reason,
                f"the documents could not be queued: {result.message}",
                headers={"Retry-After": "2"},
                details={"backend": "index"},
            )
        return JSONResponse({"job": {"id": result.job_id, "state": "queued"}}, status_code=202)
    try:
        job = await index.index_critical(user.internal_token, documents)
    except RemoteError as error:
        raise _api_error(error) from None
    return JSONResponse({"job": job_dict(job)})


@router.get("/search", summary="Semantic search over the caller's own documents")
async def search(
    user: CurrentUser,
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=2000)],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    filter: Annotated[list[str] | None, Query(description="metadata filter key:value, repeatable")] = None,
) -> dict[str, Any]:
    filters: dict[str, str] = {}
    for item in filter or []:
        key, sep, value = item.partition(":")
        if not sep or not key:
            raise ApiError(422, "REQUEST_INVALID", f"filter {item[:80]!r} is not key:value")
        filters[key] = value
    try:
        hits = await GatewayState.of(request).index.search(user.internal_token, q, limit, filters)
    except RemoteError as error:
        raise _api_error(error) from None
    return {
        "hits": [{"id": h.id, "text": h.text, "score": round(h.score, 6), "metadata": dict(h.metadata)} for h in hits]
    }


@router.get("/jobs/{job_id}", summary="The state of an indexing job")
async def job(job_id: str, user: CurrentUser, request: Request) -> dict[str, Any]:
    try:
        found = await GatewayState.of(request).index.job(user.internal_token, job_id)
    except RemoteError as error:
        raise _api_error(error) from None
    return {"job": job_dict(found)}


@router.get("/readiness", summary="Whether the index is ready, and why not")
async def readiness(user: CurrentUser, request: Request) -> dict[str, Any]:
    try:
        state = await GatewayState.of(request).index.readiness(user.internal_token)
    except RemoteError as error:
        raise _api_error(error) from None
    return {"readiness": readiness_dict(state)}
