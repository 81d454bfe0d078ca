"""One catalog of every reason code the services emit: its subsystem, severity, class and remedy.

Error replies and error log lines carry a code from here. `CONFIG` is something an operator
changes in settings, `UPSTREAM` a dependency that failed, `CLIENT` a caller's mistake, `DEFECT` a
bug in our code. A test fails if code emits a reason that is not listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Klass(StrEnum):
    CONFIG = "CONFIG"
    UPSTREAM = "UPSTREAM"
    CLIENT = "CLIENT"
    DEFECT = "DEFECT"


@dataclass(frozen=True)
class Reason:
    code: str
    subsystem: str
    severity: str  # "info", "warning", "error"
    klass: Klass
    remedy: str
    # Where to look first when this code is the root cause (`inkwell rca` lists them).
    files: tuple[str, ...] = ()
    # Expected behaviour (e.g. a development reload): reported as observed, never as a defect.
    expected: bool = False


# The files to inspect for a code, part of its catalog entry (Reason.files); kept beside the
# entries so each entry stays one line.
FILES: dict[str, tuple[str, ...]] = {
    "TOKEN_UNVERIFIED": ("services/auth/verifier.py", "services/auth/settings.py", "gateway/auth.py"),
    "TOKEN_MISSING": ("gateway/auth.py", "frontend: the request layer that attaches the session token"),
    "TOKEN_MALFORMED": ("services/auth/verifier.py", "gateway/auth.py"),
    "TOKEN_TOO_LARGE": ("services/auth/verifier.py", "gateway/auth.py"),
    "ALGORITHM_NOT_ALLOWED": ("services/auth/verifier.py", "gateway/auth.py"),
    "ISSUER_NOT_ALLOWED": ("services/auth/verifier.py", "services/auth/settings.py", "gateway/session_cache.py"),
    "KID_UNKNOWN": ("services/auth/clerk_keys.py", "services/auth/settings.py", "libs/runtime/jwks.py"),
    "SIGNATURE_INVALID": ("services/auth/verifier.py", "gateway/auth.py"),
    "TOKEN_EXPIRED": ("services/auth/verifier.py", "gateway/auth.py"),
    "TOKEN_NOT_YET_VALID": ("services/auth/verifier.py", "gateway/auth.py"),
    "CLAIM_MISSING": ("services/auth/verifier.py", "gateway/auth.py"),
    "TOKEN_VERSION_UNSUPPORTED": ("services/auth/verifier.py", "gateway/auth.py"),
    "AUTHORIZED_PARTY_NOT_ALLOWED": ("services/auth/verifier.py", "services/auth/settings.py"),
    "JWKS_UNAVAILABLE": ("libs/runtime/jwks.py", "services/auth/key_sources.py", "services/auth/service.py"),
    "JWKS_KEY_INVALID": ("libs/runtime/jwks.py",),
    "KEY_LOOKUP_FAILED": ("libs/runtime/jwks.py", "services/auth/key_sources.py"),
    "AUTH_UNAVAILABLE": ("gateway/auth.py", "gateway/backends.py"),
    "UNVERIFIED_JWT_SETTING_IGNORED": ("services/auth/self_check.py", "services/auth/settings.py"),
    "CLERK_NOT_CONFIGURED": ("services/auth/self_check.py", "services/auth/settings.py"),
    "CLERK_KEY_ENVIRONMENT_MISMATCH": ("services/auth/self_check.py", "services/auth/clerk_keys.py"),
    "CLERK_INSTANCE_MISMATCH": ("services/auth/self_check.py", "services/auth/clerk_keys.py"),
    "CLERK_JWKS_UNREACHABLE": ("services/auth/self_check.py", "services/auth/key_sources.py"),
    "SELF_CHECK_DEFECT": ("services/auth/self_check.py",),
    "IDENTITY_MISSING": ("libs/runtime/identity.py", "libs/runtime/client.py"),
    "IDENTITY_WRONG_AUDIENCE": ("libs/runtime/identity.py", "services/auth/internal_tokens.py"),
    "IDENTITY_KEYS_UNAVAILABLE": ("libs/runtime/identity.py", "services/auth/internal_tokens.py"),
    "INTERNAL_DEFECT": ("libs/runtime/interceptor.py", "gateway/middleware.py"),
    "BACKEND_UNAVAILABLE": ("libs/runtime/errors.py", "gateway/backends.py"),
    "BACKENDS_NOT_READY": ("gateway/backends.py",),
    "OFFLINE": ("libs/model_registry/hub.py", "libs/model_registry/downloads.py"),
    "UNAUTHORIZED": ("libs/model_registry/hub.py", "libs/config/models.toml"),
    "DISK_FULL": ("libs/model_registry/downloads.py", "libs/model_registry/settings.py"),
    "CORRUPT": ("libs/model_registry/downloads.py",),
    "HUB_ERROR": ("libs/model_registry/hub.py",),
    "DOWNLOAD_FAILED": ("libs/model_registry/downloads.py", "libs/model_registry/hub.py"),
    "NOT_DOWNLOADED": ("libs/model_registry/registry.py", "libs/config/models.toml"),
    "INSUFFICIENT_MEMORY": ("libs/model_registry/memory.py", "libs/config/models.toml"),
    "OUT_OF_MEMORY": ("libs/model_registry/loading.py", "libs/model_registry/memory.py"),
    "MODEL_OUT_OF_MEMORY": ("libs/model_registry/loading.py", "libs/model_registry/memory.py"),
    "INDEX_NOT_READY": ("services/index/readiness.py", "services/index/service.py", "gateway/index_routes.py"),
    "INDEX_DAMAGED": ("services/index/user_index.py", "services/index/store.py"),
    "INDEX_REBUILDING": ("services/index/user_index.py",),
    "INDEX_REENCODING": ("services/index/user_index.py", "services/index/engine.py", "libs/config/models.toml"),
    "INDEX_SYNC_FAILED": ("services/index/engine.py", "services/index/store.py"),
    "INDEX_DRAIN_FAILED": ("services/index/engine.py",),
    "INDEX_ENQUEUE_FAILED": ("gateway/index_routes.py", "gateway/workflow/today.py"),
    "MODEL_UNAVAILABLE": ("libs/config/models.toml", "services/llm/router.py", "services/llm/classify.py"),
    "MODEL_LOAD_FAILED": ("libs/model_registry/loading.py", "services/index/main.py"),
    "ROUTE_NOT_FOUND": ("services/llm/routes.py", "services/llm/settings.py", ".env (INKWELL_HF_BASE_URL)"),
    "CREDENTIALS": ("services/llm/settings.py", ".env (HF_TOKEN)"),
    "NOT_CONFIGURED": ("services/llm/settings.py", ".env (HF_TOKEN)"),
    "PROVIDER_NOT_CONFIGURED": ("services/llm/settings.py", ".env (HF_TOKEN)"),
    "TRANSIENT": ("services/llm/router.py", "services/llm/classify.py"),
    "BAD_REQUEST": ("services/llm/structured.py", "services/llm/router.py"),
    "NO_CANDIDATES": ("libs/config/models.toml",),
    "ALL_PROVIDERS_FAILED": ("services/llm/router.py", "services/llm/service.py", "libs/config/models.toml"),
    "UNREACHABLE": ("services/llm/routes.py", "services/llm/settings.py"),
    "USAGE_WRITE_FAILED": ("services/llm/usage.py",),
    "PILLARS_MISSING": ("gateway/workflow/planner.py", "gateway/workflow/pillars.py"),
    "LLM_UNAVAILABLE": ("gateway/workflow/planner.py", "gateway/backends.py"),
    "WORKFLOW_STORE_FAILED": ("gateway/workflow/store.py", "gateway/workflow/db.py"),
    "USAGE_UNAVAILABLE": ("gateway/subscription_routes.py", "gateway/accounting.py"),
    "STORAGE_NOT_WRITABLE": ("services/index/storage.py", "services/index/main.py"),
    "USAGE_LIMIT_REACHED": ("services/llm/limits.py", "libs/plans/usage.py", "libs/config/plans.toml"),
    "ALERT_NOT_FOUND": ("gateway/workflow/alerts.py", "gateway/subscription_routes.py"),
    "BODY_TOO_LARGE": ("gateway/body_limit.py", "gateway/settings.py"),
}


def _r(
    code: str, subsystem: str, severity: str, klass: Klass, remedy: str, expected: bool = False
) -> tuple[str, Reason]:
    return code, Reason(code, subsystem, severity, klass, remedy, FILES.get(code, ()), expected)


C, U, K, D = Klass.CONFIG, Klass.UPSTREAM, Klass.CLIENT, Klass.DEFECT

CATALOG: dict[str, Reason] = dict(
    [
        # --- operations: codes `inkwell rca` assigns to lines that carry none (legacy logs, uvicorn) ---
        _r(
            "TOKEN_UNVERIFIED",
            "auth",
            "warning",
            C,
            "a session token did not verify against the configured Clerk instance (the legacy backend does not"
            " say why): check that CLERK_PUBLISHABLE_KEY and CLERK_SECRET_KEY belong to the frontend's instance",
        ),
        _r(
            "DEV_RELOAD",
            "runtime",
            "info",
            C,
            "expected in development (uvicorn --reload restarts on file edits); never run --reload in production",
            expected=True,
        ),
        # --- auth: session tokens ---
        _r(
            "TOKEN_MISSING",
            "auth",
            "info",
            K,
            "the frontend called before its Clerk session was ready; retry after sign-in",
        ),
        _r("TOKEN_MALFORMED", "auth", "warning", K, "send the raw Clerk session JWT (three base64url segments)"),
        _r("TOKEN_TOO_LARGE", "auth", "warning", K, "send the Clerk session token, not a custom JWT template"),
        _r("ALGORITHM_NOT_ALLOWED", "auth", "warning", K, "only RS256 Clerk session tokens are accepted"),
        _r(
            "ISSUER_NOT_ALLOWED",
            "auth",
            "warning",
            C,
            "the token is from another Clerk instance (or a dev token sent to production): check CLERK_PUBLISHABLE_KEY",
        ),
        _r(
            "KID_UNKNOWN",
            "auth",
            "warning",
            C,
            "the signing key is not the pinned instance's: check that CLERK_SECRET_KEY/CLERK_PUBLISHABLE_KEY match",
        ),
        _r("SIGNATURE_INVALID", "auth", "warning", K, "the token was altered or signed by someone else"),
        _r(
            "TOKEN_EXPIRED", "auth", "info", K, "refresh the session token; if secondsSinceExpiry is small, sync clocks"
        ),
        _r("TOKEN_NOT_YET_VALID", "auth", "warning", C, "the client's or server's clock is ahead: sync clocks (NTP)"),
        _r("CLAIM_MISSING", "auth", "warning", K, "use the Clerk session token (v2), not a JWT template"),
        _r("TOKEN_VERSION_UNSUPPORTED", "auth", "warning", C, "enable session token v2 in the Clerk Dashboard"),
        _r("AUTHORIZED_PARTY_NOT_ALLOWED", "auth", "warning", C, "add the frontend origin to CLERK_AUTHORIZED_PARTIES"),
        _r("SESSION_PENDING", "auth", "info", K, "the user must finish the pending sign-in tasks"),
        _r("JWKS_UNAVAILABLE", "auth", "error", U, "the Clerk JWKS cannot be fetched: check network access to Clerk"),
        _r("JWKS_KEY_INVALID", "auth", "warning", U, "a key in the JWKS could not be parsed; it is skipped"),
        _r("KEY_LOOKUP_FAILED", "auth", "error", D, "report it: a key lookup failed without a specific reason"),
        _r("AUDIENCE_UNKNOWN", "auth", "warning", K, "ask for audiences listed in INKWELL_INTERNAL_AUDIENCES"),
        _r(
            "SERVICE_KEY_INVALID",
            "auth",
            "error",
            C,
            "set the same INKWELL_SERVICE_KEY on the auth service and the gateway (or share the data directory)",
        ),
        _r(
            "SERVICE_KEY_MISSING",
            "gateway",
            "error",
            C,
            "the gateway has no service key: set INKWELL_SERVICE_KEY (the auth service's) or share its data directory",
        ),
        _r("AUTH_UNAVAILABLE", "gateway", "error", U, "the auth service did not answer: check that it runs (readyz)"),
        # --- auth: configuration findings ---
        _r(
            "UNVERIFIED_JWT_SETTING_IGNORED",
            "auth",
            "warning",
            C,
            "unset ALLOW_UNVERIFIED_JWT_DEV; use the development issuer (INKWELL_ENV=development)",
        ),
        _r("DEV_ISSUER_ACTIVE", "auth", "info", C, "development tokens are trusted; never in production"),
        _r("CLERK_NOT_CONFIGURED", "auth", "warning", C, "set CLERK_PUBLISHABLE_KEY and CLERK_SECRET_KEY"),
        _r("CLERK_KEY_ENVIRONMENT_MISMATCH", "auth", "error", C, "use pk_test with sk_test, or pk_live with sk_live"),
        _r(
            "CLERK_INSTANCE_MISMATCH",
            "auth",
            "error",
            C,
            "secret key and publishable key belong to different Clerk instances: copy both from one instance",
        ),
        _r(
            "CLERK_JWKS_UNREACHABLE",
            "auth",
            "warning",
            U,
            "check network access to the Clerk Frontend and Backend APIs",
        ),
        _r("SELF_CHECK_DEFECT", "auth", "error", D, "report it: the configuration self-check crashed"),
        # --- internal identity ---
        _r("IDENTITY_MISSING", "runtime", "warning", D, "internal callers must forward the identity token"),
        _r("IDENTITY_INVALID", "runtime", "warning", K, "the internal identity token is forged or from another auth"),
        _r("IDENTITY_EXPIRED", "runtime", "warning", K, "the caller held an identity token too long"),
        _r("IDENTITY_WRONG_AUDIENCE", "runtime", "warning", D, "the token was minted for another service"),
        _r(
            "IDENTITY_LIFETIME_TOO_LONG",
            "runtime",
            "warning",
            K,
            "exp - iat exceeds INKWELL_INTERNAL_TOKEN_TTL_S: the token was not minted by auth (is the internal "
            "signing key leaked?), or the services' INKWELL_INTERNAL_TOKEN_TTL_S values differ",
        ),
        _r("IDENTITY_KEYS_UNAVAILABLE", "runtime", "error", U, "the auth service is unreachable for GetInternalKeys"),
        # --- shared ---
        _r("INTERNAL_DEFECT", "runtime", "error", D, "a bug: the service log has the stack under the request id"),
        _r("REQUEST_INVALID", "runtime", "info", K, "fix the field named in the error"),
        _r("BACKEND_UNAVAILABLE", "runtime", "error", U, "a backend is down or unreachable: check readyz"),
        _r("DEADLINE_EXCEEDED", "runtime", "warning", U, "the call ran out of time"),
        _r("BACKENDS_NOT_READY", "gateway", "warning", U, "wait, or check the named backend's readiness reason"),
        _r(
            "NOT_FOUND",
            "gateway",
            "info",
            K,
            "the route, repository or revision does not exist: check the URL or libs/config/models.toml",
        ),
        _r("METHOD_NOT_ALLOWED", "gateway", "info", K, "use the HTTP method the route documents"),
        _r("HTTP_ERROR", "gateway", "info", K, "see the message"),
        _r(
            "HEADERS_TOO_LARGE",
            "gateway",
            "info",
            K,
            "send fewer or smaller headers (or cookies); the cap is INKWELL_MAX_HEADER_BYTES",
        ),
        _r(
            "SHUTTING_DOWN",
            "runtime",
            "info",
            U,
            "the process got SIGTERM and is draining (INKWELL_DRAIN_S): send new requests to another replica",
        ),
        # --- models ---
        _r(
            "OFFLINE",
            "models",
            "warning",
            U,
            "the hub is unreachable (or HF_HUB_OFFLINE=1): `inkwell models pull` when online",
        ),
        _r("UNAUTHORIZED", "models", "error", C, "the repo is gated or private: accept its terms and set HF_TOKEN"),
        _r("DISK_FULL", "models", "error", C, "free disk space or point INKWELL_MODEL_CACHE elsewhere"),
        _r("CORRUPT", "models", "error", U, "the download did not match its checksum: pull it again"),
        _r("HUB_ERROR", "models", "warning", U, "the hub answered an error: retry later"),
        _r("DOWNLOAD_FAILED", "models", "error", D, "report it with the log line: an unclassified download failure"),
        _r("CANCELLED", "models", "info", K, "the download was cancelled; pull it again"),
        _r("MODEL_DOWNLOAD_CANCELLED", "models", "info", K, "the download was cancelled; pull it again"),
        _r(
            "NOT_DOWNLOADED",
            "models",
            "info",
            C,
            "the model downloads in the background, or `inkwell models pull NAME`",
        ),
        _r(
            "INSUFFICIENT_MEMORY", "models", "warning", C, "free memory or choose a smaller model (INKWELL_AGENT_MODEL)"
        ),
        _r("OUT_OF_MEMORY", "models", "warning", C, "the model did not fit while loading; a smaller one is used"),
        _r("MODEL_OUT_OF_MEMORY", "models", "warning", C, "the model did not fit while loading; a smaller one is used"),
        _r("MODEL_UNKNOWN", "models", "info", K, "use a model name from libs/config/models.toml"),
        _r(
            "MODEL_CACHE_UNWRITABLE",
            "models",
            "warning",
            C,
            "the dequantized GGUF cache cannot be written: point INKWELL_DEQUANTIZED_CACHE at a writable directory",
        ),
        _r("MODEL_PRELOAD_FAILED", "models", "error", D, "the local model failed to load: see the stack in the log"),
        # --- index ---
        _r("INDEX_NOT_READY", "index", "warning", U, "retry after RetryInfo, or write in BACKGROUND mode"),
        _r("INDEX_WRITE_PENDING", "index", "info", U, "the write is stored and will be indexed; check GetJob"),
        _r(
            "INDEX_DAMAGED",
            "index",
            "error",
            U,
            "the damaged index was moved to quarantine/ and is rebuilt from the store",
        ),
        _r(
            "INDEX_REBUILDING",
            "index",
            "warning",
            U,
            "wait: a damaged index is being rebuilt from the stored documents",
        ),
        _r(
            "INDEX_REENCODING",
            "index",
            "warning",
            C,
            "expected after changing INKWELL_EMBEDDINGS_ENGINE: the index is re-encoded from the stored documents",
        ),
        _r("INDEX_SYNC_FAILED", "index", "error", D, "report it: an index could not catch up with the store"),
        _r("INDEX_DRAIN_FAILED", "index", "error", D, "report it: a batch failed and stays queued"),
        _r("INDEX_ENQUEUE_FAILED", "gateway", "warning", U, "the index service could not be reached to queue tasks"),
        _r("JOB_NOT_FOUND", "index", "info", K, "the job id is not one of yours"),
        _r("MODEL_LOADING", "index", "info", U, "the embeddings model is loading"),
        _r("MODEL_DOWNLOADING", "index", "info", U, "the embeddings model is downloading"),
        _r(
            "MODEL_UNAVAILABLE",
            "llm",
            "warning",
            U,
            "the model is not served on that route (or the embeddings model cannot be had): fix the registry file"
            " (libs/config/models.toml)",
        ),
        _r("MODEL_LOAD_FAILED", "index", "error", D, "the embeddings model failed to load: see the stack in the log"),
        # --- llm ---
        _r("ROUTE_NOT_FOUND", "llm", "error", C, "the provider's base URL is wrong (the router's is /v1, not /hf/v1)"),
        _r("CREDENTIALS", "llm", "error", C, "the provider refused the API key: check HF_TOKEN"),
        _r("NOT_CONFIGURED", "llm", "warning", C, "set the provider's API key (HF_TOKEN)"),
        _r("PROVIDER_NOT_CONFIGURED", "llm", "warning", C, "set the provider's API key (HF_TOKEN)"),
        _r("TRANSIENT", "llm", "warning", U, "the provider is overloaded or flaky; retried inside the deadline"),
        _r("CAPABILITY", "llm", "info", U, "the model refused the response format; a simpler shape is used"),
        _r("BAD_REQUEST", "llm", "error", D, "the provider rejected our request: report it with the detail"),
        _r("OUTPUT", "llm", "info", U, "the model's JSON was invalid; repaired, re-asked or the next model used"),
        _r("DEADLINE", "llm", "warning", U, "the request ran out of time before a model answered"),
        _r("NO_LOCAL_MODEL", "llm", "info", C, "no local model is ready: see `inkwell models`"),
        _r("NO_CANDIDATES", "llm", "error", C, "the purpose has no candidates in libs/config/models.toml"),
        _r(
            "NO_CANDIDATE_READY",
            "llm",
            "error",
            U,
            "no model of any purpose can answer (the LLM service is NOT_SERVING): set HF_TOKEN, fix the route, "
            "or `inkwell models pull`; the log line lists each candidate's state",
        ),
        _r("ALL_PROVIDERS_FAILED", "llm", "error", U, "no provider produced valid output: see the attempts"),
        _r("UNREACHABLE", "llm", "warning", U, "the provider's base URL did not answer"),
        _r("USAGE_WRITE_FAILED", "llm", "error", D, "usage records could not be written: check the data directory"),
        # --- workflow / subscription ---
        _r("PLAN_NOT_FOUND", "workflow", "info", K, "POST /api/today-workflow/generate creates the plan"),
        _r("TASK_NOT_FOUND", "workflow", "info", K, "the task is not one of yours"),
        _r("PILLARS_MISSING", "workflow", "warning", U, "the LLM left pillars out; fallback tasks fill them"),
        _r(
            "LLM_DEADLINE",
            "workflow",
            "warning",
            U,
            "the model did not answer within its share of the plan budget (INKWELL_PLAN_BUDGET_S); "
            "the detail names the model: check the provider's latency or reorder [purposes.workflow_plan]",
        ),
        _r(
            "INDEX_OUTBOX_FAILED",
            "workflow",
            "error",
            U,
            "the index refused a plan's tasks for good (the row's reason says why); they stay in the outbox table",
        ),
        _r("LLM_UNAVAILABLE", "workflow", "error", U, "the LLM service did not answer: check that it runs (readyz)"),
        _r("WORKFLOW_STORE_FAILED", "workflow", "error", U, "the workflow database failed: check DATABASE_URL"),
        _r("USER_MISMATCH", "subscription", "info", K, "a user can only read their own subscription"),
        _r("USAGE_UNAVAILABLE", "subscription", "error", U, "the LLM service's usage records are unreachable"),
        _r(
            "USAGE_LIMIT_REACHED",
            "subscription",
            "info",
            K,
            "the user's plan limit for this period is reached: wait for the next period or assign a larger plan"
            " (INKWELL_PLANS_FILE [assignments])",
        ),
        _r("ALERT_NOT_FOUND", "subscription", "info", K, "the alert id is not one of the caller's alerts"),
        # --- HTTP edge ---
        _r(
            "BODY_TOO_LARGE",
            "gateway",
            "info",
            K,
            "the request body is over INKWELL_MAX_BODY_BYTES: send less (split index batches)",
        ),
        # --- gateway: operator routes ---
        _r(
            "OPS_FORBIDDEN",
            "gateway",
            "warning",
            K,
            "operator routes admit only principals in INKWELL_OPS_USERS or INKWELL_OPS_ORG_ROLES (org_id:role)",
        ),
        # --- doctor (Diagnose and its gatherers) ---
        _r(
            "DIAGNOSE_INCOMPLETE",
            "doctor",
            "warning",
            U,
            "a check did not finish within the Diagnose deadline: the dependency it names is slow or hangs",
        ),
        _r(
            "DIAGNOSE_UNAVAILABLE",
            "doctor",
            "error",
            U,
            "the service did not answer Diagnose: check that it runs and that its address is right",
        ),
        _r(
            "CLOCK_SKEW",
            "doctor",
            "warning",
            C,
            "the clocks disagree beyond the allowed skew: run NTP (chrony, systemd-timesyncd) on every host",
        ),
        _r(
            "STORAGE_NOT_WRITABLE",
            "index",
            "error",
            C,
            "point INKWELL_DATA_DIR (or INKWELL_INDEX_DIR) at a writable directory; at run time the volume is"
            " read-only or full: free space or remount it read-write, the index serves again by itself",
        ),
        # --- gateway: fair sharing ---
        _r(
            "RATE_LIMITED",
            "gateway",
            "info",
            K,
            "this account sent more requests than its share (INKWELL_RATE_PER_S / INKWELL_RATE_BURST): retry after"
            " Retry-After seconds; not a plan limit",
        ),
        _r(
            "EVENT_LOOP_BLOCKED",
            "gateway",
            "warning",
            D,
            "a callback used the gateway's event loop for longer than INKWELL_LOOP_BLOCK_WARN_MS: move that work"
            " off the loop (the log names the coroutine)",
        ),
    ]
)


def describe(code: str) -> Reason | None:
    return CATALOG.get(code)
