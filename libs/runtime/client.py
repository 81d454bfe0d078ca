"""Outbound gRPC calls: long-lived channels, propagated ids, and a deadline on every call."""

from __future__ import annotations

import json

import grpc

from libs.runtime import context

KEEPALIVE_MS = 30_000  # idle channels ping this often, so a dead connection is noticed before a call

# Idempotent internal calls get exactly one retry on UNAVAILABLE (e.g. a connection closed by a
# GOAWAY or a restarted replica): the retry goes out on a fresh connection, within the same deadline.
IDEMPOTENT_METHODS = [
    {"service": "inkwell.auth.v1.AuthService", "method": "VerifySession"},
    {"service": "inkwell.auth.v1.AuthService", "method": "GetInternalKeys"},
    {"service": "inkwell.auth.v1.AuthService", "method": "MintServiceIdentity"},
]
_SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": IDEMPOTENT_METHODS,
                "retryPolicy": {
                    "maxAttempts": 2,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)


def channel_options(keepalive_ms: int = KEEPALIVE_MS) -> list[tuple[str, str | int]]:
    """Client channel options. Servers accept these pings (libs/runtime/server.py server_options)."""
    return [
        ("grpc.service_config", _SERVICE_CONFIG),
        ("grpc.keepalive_time_ms", keepalive_ms),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),  # keep pinging an idle channel, not just twice
        ("grpc.enable_retries", 1),  # only the methods with a retryPolicy above, plus transparent retries
    ]


CHANNEL_OPTIONS = channel_options()


def open_channel(address: str, keepalive_ms: int = KEEPALIVE_MS) -> grpc.aio.Channel:
    """One channel per backend, opened once and reused (round-robin over every resolved address)."""
    target = address if "://" in address or address.startswith(("dns:", "unix:")) else f"dns:///{address}"
    return grpc.aio.insecure_channel(target, options=channel_options(keepalive_ms))


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


NO_DEADLINE_S = 86_400.0  # grpc reports "no deadline" as a huge time_remaining()


def deadline(cap_s: float, remaining_s: float | None = None) -> float:
    """min(time the caller has left, this hop's cap): no call goes out without a deadline."""
    if remaining_s is None or remaining_s > NO_DEADLINE_S:
        return cap_s
    return max(0.001, min(remaining_s, cap_s))


def call_timeout(cap_s: float) -> float:
    """The `timeout` of an outbound call made while serving a request: the time the current
    request's caller has left (its gRPC deadline, or the gateway route's budget), capped by this
    call's own limit. Every outbound call uses it, so no hop outlives its caller."""
    ctx = context.get()
    return deadline(cap_s, ctx.remaining() if ctx is not None else None)
