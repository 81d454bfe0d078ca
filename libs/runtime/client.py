"""Outbound gRPC calls: long-lived channels, propagated ids, and a deadline on every call."""

from __future__ import annotations

import json

import grpc

from libs.runtime import context
from libs.runtime.limits import MESSAGE_SIZE_OPTIONS

_SERVICE_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})

CHANNEL_OPTIONS = [
    ("grpc.service_config", _SERVICE_CONFIG),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.enable_retries", 0),
    *MESSAGE_SIZE_OPTIONS,
]


def open_channel(address: str) -> grpc.aio.Channel:
    """One channel per backend, opened once and reused (round-robin over every resolved address)."""
    target = address if "://" in address or address.startswith(("dns:", "unix:")) else f"dns:///{address}"
    return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)


def call_metadata(internal_token: str | None = None) -> list[tuple[str, str]]:
    """Request id and traceparent of the current request, plus the identity token if any."""
    metadata: list[tuple[str, str]] = []
    ctx = context.get()
    if ctx is not None:
        metadata.append((context.REQUEST_ID_HEADER, ctx.request_id))
        metadata.append((context.TRACEPARENT_HEADER, ctx.traceparent()))
    if internal_token:
        metadata.append(("authorization", f"Bearer {internal_token}"))
    return metadata


def deadline(cap_s: float, remaining_s: float | None = None) -> float:
    """min(time the caller has left, this hop's cap): no call goes out without a deadline."""
    if remaining_s is None or remaining_s > 86_400:  # grpc reports "no deadline" as a huge number
        return cap_s
    return max(0.001, min(remaining_s, cap_s))
