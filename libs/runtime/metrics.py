"""Prometheus metrics: one registry per process, served on /metrics (the gateway's HTTP app, or a
small HTTP listener on INKWELL_METRICS_PORT for a gRPC service). Labels are bounded: route
templates, method names, reason codes, model names from the registry file, never user ids."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("inkwell.metrics")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

RPC_LATENCY = Histogram(
    "inkwell_rpc_seconds", "gRPC handling time", ["service", "method", "code"], buckets=LATENCY_BUCKETS
)
HTTP_LATENCY = Histogram(
    "inkwell_http_seconds", "Gateway request time", ["route", "method", "status"], buckets=LATENCY_BUCKETS
)
AUTH_DECISIONS = Counter("inkwell_auth_decisions_total", "Session tokens allowed or denied", ["outcome", "reason"])
JWKS_FETCHES = Counter("inkwell_jwks_fetches_total", "JWKS fetches", ["key_set", "outcome"])
JWKS_LOOKUPS = Counter("inkwell_jwks_lookups_total", "Key lookups in the JWKS cache", ["key_set", "result"])
SESSION_CACHE = Counter("inkwell_gateway_session_cache_total", "Verified-session cache lookups", ["result"])
LLM_ATTEMPTS = Counter(
    "inkwell_llm_attempts_total", "Upstream attempts", ["provider", "model", "outcome", "error_class"]
)
LLM_REPLIES = Counter("inkwell_llm_replies_total", "Replies by result", ["purpose", "result"])
INDEX_READINESS = Gauge("inkwell_index_ready", "1 when the index state is the label's state", ["state"])
INDEX_READINESS_WAITERS = Gauge(
    "inkwell_index_readiness_waiters", "Requests waiting (within their deadline) for the index to be ready"
)
INDEX_QUEUE = Gauge("inkwell_index_queue_depth", "Queued indexing jobs")
INDEX_DRAINED = Counter("inkwell_index_drained_documents_total", "Documents moved from the queue into indexes")
INDEX_OUTBOX_DEPTH = Gauge("inkwell_index_outbox_depth", "Index outbox rows waiting to be delivered", ["state"])
INDEX_OUTBOX_OLDEST_AGE = Gauge(
    "inkwell_index_outbox_oldest_age_seconds", "Age of the oldest index outbox row still waiting (0 when none)"
)
INDEX_OUTBOX_DELIVERIES = Counter(
    "inkwell_index_outbox_attempts_total", "Index outbox delivery attempts", ["outcome", "reason"]
)
INDEX_ENQUEUE_FAILURES = Counter(
    "inkwell_index_enqueue_failures_total", "Background writes that could not be queued", ["reason"]
)


def serve(port: int | None, host: str = "127.0.0.1") -> None:
    """Expose /metrics for a gRPC service process (off when the port is not set)."""
    if port:
        start_http_server(port, addr=host)
        log.info("metrics listening", extra={"address": f"{host}:{port}"})


THROTTLED = Counter(
    "inkwell_gateway_throttled_total", "Requests over their user's budget: delayed or refused", ["route", "action"]
)
LOOP_BLOCKED = Counter("inkwell_gateway_loop_blocked_total", "Event-loop callbacks over the blocking threshold")
READ_CACHE = Counter("inkwell_gateway_read_cache_total", "Polled reads answered from the cache or computed", ["result"])
