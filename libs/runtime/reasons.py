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


def _r(code: str, subsystem: str, severity: str, klass: Klass, remedy: str) -> tuple[str, Reason]:
    return code, Reason(code, subsystem, severity, klass, remedy)


C, U, K, D = Klass.CONFIG, Klass.UPSTREAM, Klass.CLIENT, Klass.DEFECT

CATALOG: dict[str, Reason] = dict(
    [
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
            "point INKWELL_DATA_DIR (or INKWELL_INDEX_DIR) at a writable directory",
        ),
    ]
)


def describe(code: str) -> Reason | None:
    return CATALOG.get(code)
