"""`inkwell rca`: the legacy backend's plain-text logs give the seed tracker's four issues back, and
the triage rules (grouping, linking effects to the first failing subsystem, windows) hold. The
end-to-end run over real services' logs is in tests/test_tracker_failures.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from libs.rca import analyse
from libs.rca.engine import Issue, Tracker
from libs.rca.records import parse_since, read_sources
from libs.rca.render import to_markdown
from tests.support.processes import ROOT, clean_env

# Written from the seed tracker's signatures, in the legacy backend's loguru and uvicorn formats,
# with the unrelated lines a day of its logs also holds.
LEGACY_LOG = (Path(__file__).parent / "support" / "legacy_backend.log").read_text()


def legacy_tracker(tmp_path: Path) -> Tracker:
    log = tmp_path / "backend.log"
    log.write_text(LEGACY_LOG)
    return analyse(read_sources([str(tmp_path)]))


def by_reason(tracker: Tracker) -> dict[str, Issue]:
    found = {i.reason: i for i in tracker.issues}
    assert len(found) == len(tracker.issues), [i.reason for i in tracker.issues]
    return found


def test_legacy_plain_text_logs_give_the_seed_issues_back(tmp_path: Path) -> None:
    tracker = legacy_tracker(tmp_path)
    issues = by_reason(tracker)
    assert set(issues) == {"TOKEN_UNVERIFIED", "MODEL_UNAVAILABLE", "INDEX_NOT_READY", "DEV_RELOAD"}
    auth = issues["TOKEN_UNVERIFIED"]
    assert (auth.subsystem, auth.klass, auth.status, auth.severity) == ("auth", "CONFIG", "Open", "High")
    assert auth.confidence == "Medium"  # the legacy line does not say why verification failed
    assert auth.first_failing == "backend (middleware.auth_middleware:verify_token)"
    assert auth.files[0] == "middleware/auth_middleware.py (legacy backend, named by its log lines)"
    assert [s.count for s in auth.signatures] == [3]
    assert {e for e in auth.endpoints if "/api/" in e} == {
        "backend: GET /api/content-planning/monitoring/lightweight-stats (x1)",
        "backend: GET /api/subscription/dashboard/{id} (x1)",
        "backend: GET /api/subscription/status/{id} (x1)",
    }
    hf = issues["MODEL_UNAVAILABLE"]
    assert (hf.subsystem, hf.severity, hf.confidence) == ("llm", "High", "High")
    assert sorted(s.where for s in hf.signatures) == ["Qwen/Qwen2.5-72B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"]
    assert {s.reason for s in hf.effects} == {"MODEL_UNAVAILABLE (effect)"}
    assert sum(s.count for s in hf.effects) == 3
    index = issues["INDEX_NOT_READY"]
    assert (index.subsystem, index.severity, index.confidence, index.status) == ("index", "Medium", "High", "Open")
    assert not any("user_" in s.example for s in index.signatures)  # user ids are not copied into the tracker
    reload = issues["DEV_RELOAD"]
    assert (reload.status, reload.expected, reload.severity) == ("Observed", True, "Low")
    assert tracker.issues[-1] is reload  # expected behaviour comes after every open issue
    assert reload.signatures[0].count == 2 and reload.signatures[0].where == "api\\today_workflow.py"
    assert [n.split(" is hidden")[0] for n in tracker.notes if "fallback" in n] == ["MODEL_UNAVAILABLE"]
    page = to_markdown(tracker)
    assert "## Issue 4: StatReload detected changes. Reloading... (DEV_RELOAD, runtime)" in page
    assert "- Status: Observed" in page and "Issue 4: DEV_RELOAD" not in page.split("Candidate investigation")[1]


def test_the_noise_alone_is_no_issue(tmp_path: Path) -> None:
    noise = "\n".join(
        line
        for line in LEGACY_LOG.splitlines()
        if not any(s in line for s in ("Unverified", "AUTHENTICATION", "HF ", "Hugging", "llm_text", "Cannot", "Stat"))
    )
    (tmp_path / "backend.log").write_text(noise)
    tracker = analyse(read_sources([str(tmp_path)]))
    assert tracker.issues == [] and tracker.unclassified == []
    assert "No failures in the window." in to_markdown(tracker)


def jline(ts: str, service: str, logger: str, level: str, event: str, **fields: Any) -> str:
    return json.dumps({"ts": ts, "level": level, "service": service, "logger": logger, "event": event, **fields})


ROUTES = (
    "/api/auth/me",
    "/api/today-workflow/status",
    "/api/subscription/status/u1",
    "/api/content-planning/monitoring/health",
    "/api/index/documents",
)


def jwks_outage(tmp_path: Path) -> Path:
    """The shape a JWKS outage leaves: auth logs JWKS_UNAVAILABLE once a minute (repeats collapse),
    the gateway answers 503 AUTH_UNAVAILABLE on every route it protects, each route's first line
    only; so only the first request's lines share a trace id with the auth line."""
    auth, gateway = [], []
    auth.append(jline("2026-03-10T09:00:00.000Z", "auth", "inkwell.server", "INFO", "listening"))
    auth.append(
        jline(
            "2026-03-10T09:00:05.100Z",
            "auth",
            "libs.runtime.jwks",
            "ERROR",
            "JWKS fetch failed: connection refused",
            reason="JWKS_UNAVAILABLE",
            request_id="r0",
            trace_id="t0",
        )
    )
    for n, route in enumerate(ROUTES):
        gateway.append(
            jline(
                f"2026-03-10T09:00:{5 + n:02d}.200Z",
                "gateway",
                "inkwell.gateway.auth",
                "WARNING",
                "authentication failed",
                reason="AUTH_UNAVAILABLE",
                request_id=f"r{n}",
                trace_id=f"t{n}",
                route=route,
                status=503,
            )
        )
    gateway.append(
        jline(
            "2026-03-10T09:30:00.000Z",
            "gateway",
            "inkwell.gateway.auth",
            "WARNING",
            "authentication failed",
            reason="AUTH_UNAVAILABLE",
            request_id="r9",
            trace_id="t9",
            route="/api/auth/me",
            status=503,
        )
    )
    (tmp_path / "auth.log").write_text("\n".join(auth) + "\n")
    (tmp_path / "gateway.jsonl").write_text("\n".join(gateway) + "\n")
    return tmp_path


def test_a_jwks_outage_is_one_issue_with_the_gateway_503s_as_effects(tmp_path: Path) -> None:
    tracker = analyse(read_sources([str(jwks_outage(tmp_path))]), until=parse_since("2026-03-10T09:10:00Z"))
    (issue,) = tracker.issues
    assert (issue.reason, issue.subsystem, issue.klass) == ("JWKS_UNAVAILABLE", "auth", "UPSTREAM")
    assert issue.first_failing == "auth (libs.runtime.jwks)"
    assert sorted(s.where for s in issue.effects) == sorted(ROUTES)
    assert all(s.statuses == {"503": 1} for s in issue.effects)
    assert (issue.traces_linked, issue.traces_inferred) == (1, 4)
    assert issue.severity == "High"


def test_a_gateway_failure_outside_the_outage_is_its_own_issue(tmp_path: Path) -> None:
    tracker = analyse(read_sources([str(jwks_outage(tmp_path))]))
    issues = by_reason(tracker)
    assert set(issues) == {"JWKS_UNAVAILABLE", "AUTH_UNAVAILABLE"}
    late = issues["AUTH_UNAVAILABLE"]
    assert late.first_failing == "gateway (inkwell.gateway.auth)" and late.first_seen == "2026-03-10T09:30:00.000Z"
    assert len(issues["JWKS_UNAVAILABLE"].effects) == 5


def test_since_bounds_the_window(tmp_path: Path) -> None:
    tracker = analyse(read_sources([str(jwks_outage(tmp_path))]), since=parse_since("2026-03-10T09:20:00Z"))
    assert [i.reason for i in tracker.issues] == ["AUTH_UNAVAILABLE"]
    assert parse_since("1h30m", now=10_000.0) == 10_000.0 - 5400
    assert parse_since("2026-03-10T09:20:00+01:00") == parse_since("2026-03-10T08:20:00Z")


def test_token_missing_share_answers_the_session_question(tmp_path: Path) -> None:
    lines = [
        jline(
            f"2026-03-10T09:00:0{n}.000Z",
            "gateway",
            "inkwell.gateway.auth",
            "WARNING",
            "authentication failed",
            reason=reason,
            request_id=f"q{n}",
            route="/api/auth/me",
            status=401,
        )
        for n, reason in enumerate(["TOKEN_MISSING", "TOKEN_MISSING", "TOKEN_MISSING", "TOKEN_EXPIRED"])
    ]
    tracker = analyse([("gateway", lines)])
    missing = by_reason(tracker)["TOKEN_MISSING"]
    assert missing.klass == "CLIENT" and missing.severity == "Low"
    assert any("before the session was ready" in q and "3 of 4 (75%)" in q for q in missing.questions)


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "rca", *args],
        cwd=ROOT,
        env=clean_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_reads_directories_and_stdin(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "backend.log").write_text(LEGACY_LOG)
    (tmp_path / "ignored.txt").write_text(LEGACY_LOG)  # only *.log and *.jsonl under a directory
    result = run_cli(str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["issues"]) == 4 and report["sources"] == [str(tmp_path / "old" / "backend.log")]
    piped = run_cli(stdin=LEGACY_LOG)
    assert piped.returncode == 0 and piped.stdout.count("\n## Issue ") == 4
    bad = run_cli(str(tmp_path), "--since", "yesterday")
    assert bad.returncode == 2 and "--since takes" in bad.stderr
    assert run_cli(str(tmp_path / "nope")).returncode == 2


def test_ops_block_renders_the_live_tracker_escaped(tmp_path: Path) -> None:
    from gateway.ops_tracker import live_tracker, tracker_html

    outage = jwks_outage(tmp_path)
    auth_lines = (outage / "auth.log").read_text().splitlines()
    gateway_lines = (outage / "gateway.jsonl").read_text().splitlines()
    hostile = jline(
        "2026-03-10T09:00:06.000Z", "llm", "inkwell.llm", "ERROR", "<script>alert(1)</script>", reason="INTERNAL_DEFECT"
    )
    now = parse_since("2026-03-10T09:10:00Z")
    tracker = live_tracker({"auth": auth_lines, "llm": [hostile]}, gateway_lines[:5], now=now)
    assert [i.reason for i in tracker.issues] == ["JWKS_UNAVAILABLE", "INTERNAL_DEFECT"]
    page = tracker_html(tracker, truncated=["llm"])
    assert "Issue 1: JWKS_UNAVAILABLE in auth" in page and "first failing <b>auth (libs.runtime.jwks)</b>" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "buffer of: llm" in page
    old = live_tracker({"auth": auth_lines}, gateway_lines, now=now + 7200)  # more than an hour later
    assert old.issues == [] and "No failures in the last hour." in tracker_html(old)


def test_collapsed_repeats_are_counted_and_linked_to_their_first_request() -> None:
    """The gateway's flush line (gateway/log_collapse.py) carries only the repeats and the request
    they began with; a service's next line after its window (libs/runtime/signatures.py) is one
    more occurrence on top of its `repeated`."""
    auth = [
        jline(
            "2026-03-10T09:00:00.100Z",
            "auth",
            "inkwell.rpc",
            "INFO",
            "rpc failed",
            reason="KID_UNKNOWN",
            request_id="a1",
            trace_id="t1",
            method="/inkwell.auth.v1.AuthService/VerifySession",
            code="UNAUTHENTICATED",
        ),
        jline(
            "2026-03-10T09:01:30.000Z",
            "auth",
            "inkwell.rpc",
            "INFO",
            "rpc failed",
            reason="KID_UNKNOWN",
            request_id="a9",
            trace_id="t9",
            method="/inkwell.auth.v1.AuthService/VerifySession",
            code="UNAUTHENTICATED",
            repeated=2,
            first_seen=1773133200.1,
            last_seen=1773133230.0,
        ),
    ]
    gateway = [
        jline(
            "2026-03-10T09:00:00.101Z",
            "gateway",
            "inkwell.gateway.auth",
            "WARNING",
            "authentication failed",
            reason="KID_UNKNOWN",
            request_id="a1",
            trace_id="t1",
            route="/api/auth/me",
            status=401,
            first_request_id="a1",
        ),
        jline(
            "2026-03-10T09:01:05.000Z",
            "gateway",
            "inkwell.gateway.auth",
            "WARNING",
            "authentication failed (repeated)",
            reason="KID_UNKNOWN",
            route="/api/auth/me",
            status=401,
            first_request_id="a1",
            repeated=4,
            first_seen=1773133200.1,
            last_seen=1773133201.0,
            window_s=60.0,
        ),
    ]
    cached_denial = jline(  # a later request the gateway refused from its denial cache: auth never saw it
        "2026-03-10T09:00:50.000Z", "gateway", "inkwell.gateway.auth", "WARNING", "authentication failed",
        reason="KID_UNKNOWN", request_id="a7", trace_id="t7", route="/api/auth/me", status=401,
    )  # fmt: skip
    (issue,) = analyse([("auth", auth), ("gateway", [*gateway, cached_denial])]).issues
    assert [(s.service, s.count) for s in issue.signatures] == [("auth", 4)]
    assert [(s.service, s.count, s.statuses) for s in issue.effects] == [("gateway", 6, {"401": 6})]
    assert (issue.traces_linked, issue.traces_inferred) == (1, 1) and issue.first_failing == "auth (inkwell.rpc)"


def test_catalog_files_name_real_paths() -> None:
    """Files to inspect are part of a code's catalog entry; a stale path would send an operator astray."""
    from libs.runtime.reasons import CATALOG, FILES

    assert set(FILES) <= set(CATALOG)
    paths = {f for files in FILES.values() for f in files if not f.startswith(("frontend", ".env"))}
    assert sorted(p for p in paths if not (ROOT / p).exists()) == []
    assert CATALOG["ROUTE_NOT_FOUND"].files and CATALOG["DEV_RELOAD"].expected
