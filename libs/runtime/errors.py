"""Errors that cross gRPC as google.rpc.Status with exactly one ErrorInfo.

Servers raise ServiceError; the runtime interceptor turns it into the status. Clients turn an
AioRpcError back into a RemoteError with `from_rpc_error`, so a reason code survives every hop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

_REASON = re.compile(r"^[A-Z][A-Z0-9_]{0,62}$")


class ServiceError(Exception):
    """An expected failure with a stable reason code (UPPER_SNAKE, <= 63 chars)."""

    def __init__(
        self,
        code: grpc.StatusCode,
        reason: str,
        message: str,
        metadata: dict[str, str] | None = None,
        retry_after_s: float | None = None,
        domain: str | None = None,
    ) -> None:
        if not _REASON.match(reason):
            raise ValueError(f"reason must be UPPER_SNAKE, got {reason!r}")
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.metadata = {k: str(v) for k, v in (metadata or {}).items()}
        self.retry_after_s = retry_after_s
        self.domain = domain

    def to_status(self, default_domain: str) -> grpc.Status:
        info = error_details_pb2.ErrorInfo(
            reason=self.reason, domain=self.domain or default_domain, metadata=self.metadata
        )
        status = status_pb2.Status(code=_code_value(self.code), message=self.message)
        status.details.add().Pack(info)
        if self.retry_after_s is not None:
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(int(self.retry_after_s * 1e9))
            status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        return rpc_status.to_status(status)


def _code_value(code: grpc.StatusCode) -> int:
    value = code.value[0]
    assert isinstance(value, int)
    return value


@dataclass
class RemoteError(Exception):
    """A gRPC failure as seen by a client, with the callee's reason code when it sent one."""

    code: grpc.StatusCode
    reason: str
    message: str
    domain: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    retry_after_s: float | None = None

    def __str__(self) -> str:
        return f"{self.code.name} {self.reason}: {self.message}"


_TRANSPORT_REASONS = {
    grpc.StatusCode.UNAVAILABLE: "BACKEND_UNAVAILABLE",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DEADLINE_EXCEEDED",
    grpc.StatusCode.CANCELLED: "CANCELLED",
}


def from_rpc_error(error: grpc.aio.AioRpcError) -> RemoteError:
    """Decode the ErrorInfo (and RetryInfo) from a failed call's trailers."""
    code = error.code()
    message = error.details() or ""
    status: status_pb2.Status | None = None
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
    if status is not None:
        remote = RemoteError(code=code, reason="UNKNOWN", message=status.message or message)
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                remote.reason, remote.domain, remote.metadata = info.reason, info.domain, dict(info.metadata)
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                remote.retry_after_s = retry.retry_delay.ToNanoseconds() / 1e9
        return remote
    return RemoteError(code=code, reason=_TRANSPORT_REASONS.get(code, "UNKNOWN"), message=message)


__all__ = ["RemoteError", "ServiceError", "code_pb2", "from_rpc_error"]
