"""The tracker as Markdown in the hand-written seed's shape, or as JSON."""

from __future__ import annotations

import dataclasses
import json

from libs.rca.engine import CLASS_WORDS, Issue, Signature, Tracker

EXPECTED_WORDS = "expected behaviour, not a defect (no fix needed)"
TRIAGE_RULES = (
    "Repeated lines are grouped under one signature (code, process, logger, route/model) with counts.",
    "Each trace (shared trace id or request id, across processes) is filed under its first failing"
    " subsystem; the later lines are listed as its downstream effects.",
    "Configuration problems, upstream failures, client errors and code defects are told apart by the"
    " catalog class (libs/runtime/reasons.py).",
    "Expected behaviour (e.g. a development reload) is listed as Observed, never as a defect.",
    "Confidence is derived from the evidence (see each issue's basis): exact catalogued code, repetition,"
    " and causal order across processes.",
)


def to_json(tracker: Tracker) -> str:
    return json.dumps(dataclasses.asdict(tracker), indent=2)


def _sig(s: Signature) -> str:
    where = f" `{s.where}`" if s.where else ""
    statuses = ", ".join(f"{k} x{v}" for k, v in sorted(s.statuses.items()))
    answered = f", answered {statuses}" if statuses else ""
    logger = f"/{s.logger}" if s.logger else ""
    return (
        f"`{s.reason}` in {s.service}{logger}{where}: {s.count} occurrence(s){answered}, "
        f"first seen {s.first_seen or '?'}, last seen {s.last_seen or '?'} ({s.level}) - {s.example}"
    )


def _issue(n: int, i: Issue) -> list[str]:
    out = [
        f"## Issue {n}: {i.title}",
        f"- Status: {i.status}",
        f"- Severity: {i.severity}",
        f"- Subsystem: {i.subsystem}",
        f"- Class: {i.klass} - {EXPECTED_WORDS if i.expected else CLASS_WORDS.get(i.klass, '')}",
        f"- First failing subsystem: {i.first_failing}",
        "- Error signatures:",
        *[f"  - {_sig(s)}" for s in i.signatures],
    ]
    if i.effects:
        out += ["- Downstream effects:", *[f"  - {_sig(s)}" for s in i.effects]]
    if i.endpoints:
        out += ["- Observed endpoints or RPCs:", *[f"  - {e}" for e in i.endpoints]]
    out += ["- Observed behaviour:", *[f"  - {b}" for b in i.behaviour]]
    out += ["- Primary RCA hypothesis:", *[f"  - {h}" for h in i.hypothesis]]
    out += [f"- Confidence: {i.confidence}", *[f"  - {b}" for b in i.confidence_basis]]
    if i.files:
        out += ["- Likely files to inspect/edit:", *[f"  - `{f}`" for f in i.files]]
    out += [f"- Fix strategy: {i.fix}"]
    out += ["- Validation after fix:", *[f"  - {v}" for v in i.validation]]
    if i.questions:
        out += ["- Root-cause questions answered from the logs:", *[f"  - {q}" for q in i.questions]]
    return out


def to_markdown(tracker: Tracker) -> str:
    window = f"{tracker.window_start or '?'} to {tracker.window_end or '?'}"
    out = [
        "# Backend Log RCA Tracker",
        "",
        f"Written by `inkwell rca` from {tracker.lines_read} line(s) in {len(tracker.sources)} source(s)"
        f" ({tracker.records} parsed, {tracker.legacy_lines} legacy plain-text), window {window}.",
        "",
        "## Triage rules applied",
        *[f"- {rule}" for rule in TRIAGE_RULES],
        "",
    ]
    if not tracker.issues:
        out += ["No failures in the window.", ""]
    for n, issue in enumerate(tracker.issues, 1):
        out += [*_issue(n, issue), ""]
    if tracker.unclassified:
        out += ["## Warnings without a reason code (not triaged)", *[f"- {_sig(s)}" for s in tracker.unclassified], ""]
    if tracker.notes:
        out += ["## Cross-issue notes", *[f"- {note}" for note in tracker.notes], ""]
    open_issues = [(n, i) for n, i in enumerate(tracker.issues, 1) if not i.expected]
    if open_issues:
        out += ["## Candidate investigation order"]
        out += [
            f"{k}. Issue {n}: {i.reason} ({i.severity}, {i.klass}, first failing {i.first_failing})"
            for k, (n, i) in enumerate(open_issues, 1)
        ]
        out.append("")
    return "\n".join(out)
