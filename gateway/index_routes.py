"""/api/index: the frontend's way into the semantic index (writes are background by default).

The request models mirror the index service's limits (services/index/validation.py), so invalid
content is a 422 here with the field named, in either write mode; a refusal the index still
makes is mapped like any gRPC error (400 for REQUEST_INVALID). 503 + Retry-After is only for the
index being unavailable.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StringConstraints, field_validator

from gateway.errors import ApiError, responses
from gateway.settings import MAX_DOCUMENTS
from gateway.state import CurrentUser, GatewayState
from libs.clients.index import job_dict, readiness_dict
from libs.runtime.errors import RemoteError

router = APIRouter(prefix="/api/index", tags=["index"])
FILTER = r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}:"  # a metadata key, then ':', then the value


MetadataKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")]
MetadataValue = Annotated[str, StringConstraints(max_length=1024)]
NOT_BLANK = r"\S"  # at least one non-whitespace character


class DocumentIn(BaseModel):
    id: str = Field(min_length=1, max_length=256)
    text: str = Field(min_length=1, max_length=100_000, pattern=NOT_BLANK)
    metadata: dict[MetadataKey, MetadataValue] = Field(
        default_factory=dict, max_length=32, json_schema_extra={"additionalProperties": False}
    )


class IndexRequest(BaseModel):
    documents: list[DocumentIn] = Field(
        min_length=1, max_length=MAX_DOCUMENTS, description="Document ids are unique within one request"
    )
    mode: Literal["background", "critical"] = "background"

    @field_validator("documents")
    @classmethod
    def _unique_ids(cls, documents: list[DocumentIn]) -> list[DocumentIn]:
        seen: set[str] = set()
        for document in documents:
            if document.id in seen:
                raise ValueError(f"duplicate document id {document.id[:64]!r} in this request")
            seen.add(document.id)
        return documents


def _api_error(error: RemoteError) -> ApiError:
    error_ = ApiError.from_remote(error, "index")
    if error_.status == 503 and "Retry-After" not in error_.headers:
        error_.headers["Retry-After"] = "2"  # the index is unavailable: ours to recover from
    return error_


@router.post(
    "/documents",
    summary="Index documents (background: queued durably, 202; critical: indexed, 200)",
    status_code=200,
    responses={202: {"description": "Queued (background mode)"}, **responses(400, 401, 413, 422, 429, 502, 503, 504)},
)
async def index_documents(body: IndexRequest, user: CurrentUser, request: Request) -> JSONResponse:
    index = GatewayState.of(request).index
    documents = [d.model_dump() for d in body.documents]
    if body.mode == "background":
        result = await index.index_background(user.internal_token, documents)
        if not result.accepted:
            if result.error is not None:
                raise _api_error(result.error)
            raise ApiError(503, result.reason, f"the documents could not be queued: {result.message}")
        return JSONResponse({"job": {"id": result.job_id, "state": "queued"}}, status_code=202)
    try:
        job = await index.index_critical(user.internal_token, documents)
    except RemoteError as error:
        raise _api_error(error) from None
    return JSONResponse({"job": job_dict(job)})


@router.get(
    "/search",
    summary="Semantic search over the caller's own documents",
    responses=responses(400, 401, 422, 429, 502, 503, 504),
)
async def search(
    user: CurrentUser,
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=2000, pattern=NOT_BLANK)],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    filter: Annotated[
        list[Annotated[str, StringConstraints(pattern=FILTER, max_length=1090)]] | None,
        Query(description="metadata filter key:value (a metadata key, ':', the value), repeatable"),
    ] = None,
) -> dict[str, Any]:
    filters: dict[str, str] = {}
    for item in filter or []:
        key, _, value = item.partition(":")
        filters[key] = value
    try:
        hits = await GatewayState.of(request).index.search(user.internal_token, q, limit, filters)
    except RemoteError as error:
        raise _api_error(error) from None
    return {
        "hits": [{"id": h.id, "text": h.text, "score": round(h.score, 6), "metadata": dict(h.metadata)} for h in hits]
    }


@router.get("/jobs/{job_id}", summary="The state of an indexing job", responses=responses(401, 404, 422, 502, 503, 504))
async def job(job_id: str, user: CurrentUser, request: Request) -> dict[str, Any]:
    try:
        found = await GatewayState.of(request).index.job(user.internal_token, job_id)
    except RemoteError as error:
        raise _api_error(error) from None
    return {"job": job_dict(found)}


@router.get("/readiness", summary="Whether the index is ready, and why not", responses=responses(401, 502, 503, 504))
async def readiness(user: CurrentUser, request: Request) -> dict[str, Any]:
    try:
        state = await GatewayState.of(request).index.readiness(user.internal_token)
    except RemoteError as error:
        raise _api_error(error) from None
    return {"readiness": readiness_dict(state)}
