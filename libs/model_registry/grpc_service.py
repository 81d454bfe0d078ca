"""ModelsService over gRPC, served by every process that holds a ModelRegistry."""

from __future__ import annotations

import grpc
from google.protobuf import timestamp_pb2

from inkwell.models.v1 import models_service_pb2 as pb
from inkwell.models.v1 import models_service_pb2_grpc as pb_grpc
from libs.model_registry.registry import ModelRegistry, ModelRow
from libs.runtime.errors import ServiceError
from libs.runtime.protoenum import to_enum

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ModelsService"].full_name


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp | None:
    if not seconds:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def row_to_proto(row: ModelRow) -> pb.ModelStatus:
    return pb.ModelStatus(
        name=row.name,
        kind=pb.MODEL_KIND_LOCAL if row.kind == "local" else pb.MODEL_KIND_REMOTE,
        roles=list(row.roles),
        model_id=row.model_id,
        revision=row.revision,
        provider=row.provider,
        task=row.task,
        dtype=row.dtype,
        context_length=row.context_length,
        download_state=to_enum(pb.DownloadState, row.download_state),
        reason=row.reason,
        message=row.message,
        bytes_done=row.bytes_done,
        bytes_total=row.bytes_total,
        source=to_enum(pb.ModelSource, row.source),
        ram_estimate_bytes=row.ram_estimate_bytes,
        fits_in_memory=row.fits_in_memory,
        load_state=to_enum(pb.LoadState, row.load_state),
        loaded_at=_timestamp(row.loaded_at),
        last_used_at=_timestamp(row.last_used_at),
    )


class ModelsServicer(pb_grpc.ModelsServiceServicer):
    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    def _row(self, name: str) -> pb.ModelStatus:
        return row_to_proto(next(r for r in self.registry.rows() if r.name == name))

    def _resolve(self, name: str) -> str:
        resolved = self.registry.resolve(name)
        if resolved is None:
            raise ServiceError(
                grpc.StatusCode.NOT_FOUND,
                "MODEL_UNKNOWN",
                f"{name!r} is not in the model registry",
                {"known": ",".join(self.registry.catalog.models)},
            )
        return resolved

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        self.registry.downloads.refresh_local()
        return pb.ListModelsResponse(
            models=[row_to_proto(r) for r in self.registry.rows()], available_memory_bytes=self.registry.memory()
        )

    async def PullModel(self, request: pb.PullModelRequest, context: grpc.aio.ServicerContext) -> pb.PullModelResponse:
        name = self._resolve(request.name)
        self.registry.downloads.ensure(name)
        return pb.PullModelResponse(model=self._row(name))

    async def CancelPull(
        self, request: pb.CancelPullRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelPullResponse:
        name = self._resolve(request.name)
        cancelled = self.registry.downloads.cancel(name)
        return pb.CancelPullResponse(cancelled=cancelled, model=self._row(name))


def register(server: grpc.aio.Server, registry: ModelRegistry) -> None:
    pb_grpc.add_ModelsServiceServicer_to_server(ModelsServicer(registry), server)
