"""`inkwell rca`: the backend log RCA tracker, written from the system's own logs.

Reads JSON log lines from every Inkwell process (and the legacy backend's plain-text lines),
applies the tracker's triage rules (libs.rca.engine) and renders the tracker in the hand-written
seed's shape (libs.rca.render). Pure Python; imports only libs.runtime.
"""

from __future__ import annotations

from collections.abc import Iterable

from libs.rca.engine import Tracker, build
from libs.rca.records import KEEP_EVENTS, Record, parse_lines

__all__ = ["Tracker", "analyse"]

# INFO lines the questions read (start and readiness times); every other INFO line without a code
# is dropped while reading, so a day of logs fits in memory.
CONTEXT_EVENTS = frozenset(KEEP_EVENTS)


def _worth_keeping(record: Record) -> bool:
    return bool(record.reason or record.implies) or record.severity >= 30 or record.event in CONTEXT_EVENTS


def analyse(
    sources: Iterable[tuple[str, Iterable[str]]],
    since: float | None = None,
    until: float | None = None,
) -> Tracker:
    """The tracker for the lines of `sources` ((name, lines) pairs) inside [since, until]. Lines
    without a time of their own take the last time seen before them in the same source; with a
    window, lines with no time at all are left out."""
    records: list[Record] = []
    names: list[str] = []
    lines_read = 0
    for name, lines in sources:
        names.append(name)
        for record, _ in parse_lines(lines, name):
            lines_read += 1
            if record is None or not _worth_keeping(record):
                continue
            first, last = record.span
            if since is not None and (last is None or last < since):
                continue
            if until is not None and (first is None or first > until):
                continue
            records.append(record)
    return build(records, names, lines_read, (since, until))
