"""Read google.rpc.Status details off a failed call, the way a real client would."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2


def error_infos(error: grpc.aio.AioRpcError) -> list[error_details_pb2.ErrorInfo]:
    infos = []
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            assert status.code == error.code().value[0]
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    infos.append(info)
    return infos


def single_error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    infos = error_infos(error)
    assert len(infos) == 1, f"expected exactly one ErrorInfo, got {infos}"
    return infos[0]
