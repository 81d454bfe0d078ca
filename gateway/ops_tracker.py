"""The RCA tracker block of /ops: the last hour's WARNING-or-worse lines of every service (their
Diagnose replies' recent_log_lines) and of the gateway itself, through the same engine as
`inkwell rca`, one issue per root cause."""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from libs.rca import analyse
from libs.rca.engine import Issue, Signature, Tracker
from libs.rca.render import CLASS_WORDS, EXPECTED_WORDS

WINDOW_S = 3600.0
SEVERITY_CLASS = {"High": "bad", "Medium": "warn", "Low": "muted"}


def _e(value: Any) -> str:
    return html.escape(str(value))


def live_tracker(
    service_lines: Mapping[str, Sequence[str]], own_lines: Iterable[str], now: float | None = None
) -> Tracker:
    """The tracker of the last hour from each service's lines plus the gateway's own."""
    end = time.time() if now is None else now
    sources = [
        *((f"{name} (Diagnose)", list(lines)) for name, lines in service_lines.items()),
        ("gateway", list(own_lines)),
    ]
    return analyse(sources, since=end - WINDOW_S, until=end)


def _sig_row(s: Signature, role: str) -> str:
    statuses = ", ".join(f"{k} x{v}" for k, v in sorted(s.statuses.items()))
    return (
        f"<tr><td>{role}</td><td><code>{_e(s.reason)}</code></td><td>{_e(s.service)}<br><span class=muted>"
        f"{_e(s.logger)}</span></td><td>{_e(s.where)}</td><td>{s.count}{' (' + _e(statuses) + ')' if statuses else ''}"
        f"</td><td>{_e((s.first_seen or '')[11:19])} / {_e((s.last_seen or '')[11:19])}</td>"
        f"<td>{_e(s.example[:160])}</td></tr>"
    )


def _list(title: str, items: Sequence[str]) -> str:
    if not items:
        return ""
    return f"<p><b>{_e(title)}</b></p><ul>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"


def _issue(n: int, i: Issue) -> str:
    klass = EXPECTED_WORDS if i.expected else CLASS_WORDS.get(i.klass, "")
    rows = [_sig_row(s, "root") for s in i.signatures] + [_sig_row(s, "effect") for s in i.effects]
    return (
        f"<div class=issue><h3>Issue {n}: {_e(i.title)}</h3><p>Status <b>{_e(i.status)}</b> · severity "
        f"<span class={SEVERITY_CLASS[i.severity]}>{_e(i.severity)}</span> · subsystem <b>{_e(i.subsystem)}</b> · "
        f"class <code>{_e(i.klass)}</code> ({_e(klass)}) · first failing <b>{_e(i.first_failing)}</b> · "
        f"confidence <b>{_e(i.confidence)}</b></p>"
        "<table><tr><th>Role</th><th>Signature</th><th>Process</th><th>Where</th><th>Count</th>"
        f"<th>First / last seen</th><th>Example</th></tr>{''.join(rows)}</table>"
        f"<p><b>Fix:</b> {_e(i.fix)}</p>"
        f"<details><summary>Hypothesis, evidence, files, validation, questions</summary>"
        f"{_list('Primary RCA hypothesis', i.hypothesis)}{_list('Confidence basis', i.confidence_basis)}"
        f"{_list('Observed endpoints or RPCs', i.endpoints)}{_list('Files to inspect', i.files)}"
        f"{_list('Validation after fix', i.validation)}"
        f"{_list('Root-cause questions answered from the logs', i.questions)}</details></div>"
    )


def tracker_html(tracker: Tracker, truncated: Sequence[str] = ()) -> str:
    """The /ops block; `truncated` names services whose ring buffer no longer reaches an hour back."""
    parts = [
        "<h2>RCA tracker, last hour</h2><p class=muted>One issue per root cause, from every service's"
        " recent warnings (Diagnose) and the gateway's own; downstream effects are attached to the first"
        " failing subsystem. The same engine as <code>inkwell rca</code>.</p>"
    ]
    if truncated:
        parts.append(f"<p class=warn>Older lines already dropped from the buffer of: {_e(', '.join(truncated))}.</p>")
    if not tracker.issues:
        parts.append("<p class=muted>No failures in the last hour.</p>")
    parts += [_issue(n, i) for n, i in enumerate(tracker.issues, 1)]
    return "".join(parts)
