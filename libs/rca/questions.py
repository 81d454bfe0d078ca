"""Root-cause questions the logs already answer, computed per issue (never a constant: a question
whose evidence is absent is left out)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from libs.rca.records import Record
from libs.runtime.reasons import CATALOG

AUTH_SHARES = (
    ("TOKEN_MISSING", "Were the failing requests sent before the session was ready (no token at all)?"),
    ("TOKEN_EXPIRED", "Were the tokens stale (expired)?"),
    ("ISSUER_NOT_ALLOWED", "Were the tokens from another environment (a dev token in production, another issuer)?"),
    ("KID_UNKNOWN", "Were the tokens signed by another Clerk instance than the pinned one?"),
    ("AUTHORIZED_PARTY_NOT_ALLOWED", "Did the requests come from an origin not in CLERK_AUTHORIZED_PARTIES?"),
)
NOT_READY_WORDS = ("loading", "downloading", "MODEL_DOWNLOADING", "MODEL_LOADING", "starting", "not initialized")


def _pct(part: int, whole: int) -> str:
    return f"{part} of {whole} ({100 * part / whole:.0f}%)" if whole else "0"


def _requests(records: list[Record]) -> int:
    """Failed requests: distinct request ids, each counted with the repeats its line stands for."""
    seen: dict[str, int] = {}
    for r in records:
        key = r.request_id or f"{r.source}:{r.line}"
        seen[key] = max(seen.get(key, 0), r.count)
    return sum(seen.values())


def _generic(code: str, mine: list[Record], window_end: float | None) -> list[str]:
    out = []
    with_ids = {r.request_id for r in mine if r.request_id}
    if with_ids:
        out.append(
            f"How many requests failed? {_requests(mine)} occurrence(s), {len(with_ids)} with their own"
            " request id in the log (repeats inside a minute are collapsed into counts)."
        )
    stamps = [t for r in mine for t in r.span if t is not None]
    if stamps and window_end is not None:
        quiet = window_end - max(stamps)
        out.append(
            f"Is it still happening? Last seen {quiet:.0f} s before the end of the window"
            + (" (it stopped)." if quiet > 600 else ".")
        )
    first = min(mine, key=lambda r: r.ts or 0.0)
    if not first.legacy:
        if first.request_id is None and first.trace_id is None:
            out.append("Did it start under traffic? No: its first line carries no request id (startup or a check).")
        else:
            out.append(f"Did it start under traffic? Yes: its first line belongs to request {first.request_id}.")
    return out


def _auth(code: str, mine: list[Record], failures: list[Record]) -> list[str]:
    auth = [
        r
        for r in failures
        if (CATALOG.get(r.reason or r.implies or "") or _NONE).subsystem == "auth" and (r.status or r.code or r.legacy)
    ]  # refused requests, not configuration findings
    total = _requests(auth)
    if not total:
        return []
    by_code: Counter[str] = Counter()
    for reason, _ in AUTH_SHARES:
        by_code[reason] = _requests([r for r in auth if r.reason == reason])
    out = []
    for reason, question in AUTH_SHARES:
        if by_code[reason] or reason == "TOKEN_MISSING":
            out.append(f"{question} {_pct(by_code[reason], total)} auth failures were {reason}.")
    routes: Counter[str] = Counter()
    for r in mine:
        if r.route:
            routes[r.route] += r.count
    if routes:
        top = ", ".join(f"{route} x{n}" for route, n in routes.most_common(5))
        out.append(f"Which endpoints were called with these tokens? {top}.")
    return out


def _llm(code: str, mine: list[Record], failures: list[Record]) -> list[str]:
    out = []
    models = sorted({r.model for r in mine if r.model})
    routes = sorted(
        {r.route for r in mine if r.route and not r.route.startswith("/")}
        | {str(r.fields["base_url"]) for r in mine if r.fields.get("base_url")}
    )
    providers = sorted({r.provider for r in mine if r.provider})
    if models:
        out.append(f"Which model ids failed? {', '.join(models)}.")
    if routes or providers:
        out.append(f"Which provider and base URL were used? {', '.join(providers + routes)}.")
    attempts = [a for r in mine for a in (r.fields.get("attempts") or []) if isinstance(a, str)]
    if attempts:
        out.append(f"Did the fallback models fail the same way? {len(attempts)} attempt(s): " + "; ".join(attempts[:3]))
    fallbacks = [r for r in mine if r.implies or ("fallback" in r.event.lower() and not r.legacy)]
    if fallbacks:
        out.append(
            f"Did callers fall back and hide the failure? Yes: {sum(r.count for r in fallbacks)} downstream "
            "line(s) show a fallback path taken."
        )
    return out


def _index(code: str, mine: list[Record], records: list[Record]) -> list[str]:
    out = []
    early = [r for r in mine if any(w in (r.event + str(r.fields.get("detail", ""))) for w in NOT_READY_WORDS)]
    if early:
        out.append(
            f"Were writes attempted before the index was ready? Yes: {_pct(len(early), len(mine))} failure "
            "line(s) say the index was still starting, loading or downloading its model."
        )
    first = min((r.ts for r in mine if r.ts is not None), default=None)
    services = {r.service for r in mine if r.reason == code and not r.legacy}
    for service in sorted(services):
        ready = [
            r.ts
            for r in records
            if r.service == service and r.ts is not None and r.event in ("index ready", "readiness changed")
        ]
        started = [r.ts for r in records if r.service == service and r.event == "listening" and r.ts is not None]
        if first is not None and started:
            out.append(
                f"How soon after start? The first failure came {first - min(started):.1f} s after {service} started."
            )
        later = [t for t in ready if first is not None and t >= first]
        if first is not None and later:
            out.append(f"Did it recover? {service} became ready {min(later) - first:.1f} s after the first failure.")
    return out


class _NoneReason:
    subsystem = ""


_NONE = _NoneReason()
_SPECIFIC: dict[str, Callable[[str, list[Record], list[Record], list[Record]], list[str]]] = {
    "auth": lambda code, mine, records, failures: _auth(code, mine, failures),
    "llm": lambda code, mine, records, failures: _llm(code, mine, failures),
    "workflow": lambda code, mine, records, failures: _llm(code, mine, failures),
    "index": lambda code, mine, records, failures: _index(code, mine, records),
}


def answer(
    code: str,
    subsystem: str,
    mine: list[Record],
    records: list[Record],
    failures: list[Record],
    window_end: float | None,
) -> list[str]:
    """The questions answered for one issue: `mine` are its lines, `records` every line read."""
    specific = _SPECIFIC.get(subsystem)
    out = specific(code, mine, records, failures) if specific else []
    return out + _generic(code, mine, window_end)
