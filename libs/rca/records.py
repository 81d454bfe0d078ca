"""Log lines in, records out: Inkwell's JSON lines and the legacy backend's plain-text lines, read
from files, directories or stdin, bounded by a time window."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from libs.rca.legacy import recognise

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50, "FATAL": 50}
LOG_SUFFIXES = (".log", ".jsonl")
_PLAIN_TS = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:[.,](\d{1,6}))?\s?(Z|[+-]\d{2}:?\d{2})?")
_PLAIN_LEVEL = re.compile(r"\b(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)\b")
# loguru's "| LEVEL | module:function:line - message" and uvicorn's "LEVEL:  message"
_LOGURU_SOURCE = re.compile(r"\|\s*[A-Z]+\s*\|\s*(?P<module>[\w.]+)(?::(?P<function>[\w<>]+))?(?::\d+)?\s+-\s")
_UVICORN = re.compile(r"^(?:DEBUG|INFO|WARNING|ERROR|CRITICAL):\s+")
_ID_SEGMENT = re.compile(r"^(?:user_\w+|org_\w+|\d+|[0-9a-f]{8,}|[0-9a-f-]{36})$", re.IGNORECASE)
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


@dataclass(eq=False)  # identity: two identical lines are two occurrences
class Record:
    """One log line, with the fields the tracker reads. `implies` is set on legacy lines that are a
    known consequence of another code (e.g. the old backend's 'Token verification failed for
    endpoint' line follows its 'Unverified token rejected')."""

    ts: float | None
    level: str
    service: str
    logger: str
    event: str
    reason: str | None
    source: str
    line: int
    request_id: str | None = None
    trace_id: str | None = None
    first_request_id: str | None = None  # on a collapsed line: the request its repeats started with
    route: str | None = None
    method: str | None = None
    model: str | None = None
    provider: str | None = None
    file: str | None = None
    status: int | None = None
    code: str | None = None
    first_cause: str | None = None
    repeated: int = 0
    first_seen: float | None = None
    last_seen: float | None = None
    legacy: str | None = None  # the legacy signature this line matched
    exact: bool = True  # False when the legacy line does not say which Inkwell code it is
    implies: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> int:
        return LEVELS.get(self.level.upper(), 20)

    @property
    def count(self) -> int:
        """Occurrences this line stands for: itself plus the repeats the log collapsed into it. A
        flush summary (`window_s` set, libs/runtime/signatures.py) only reports repeats."""
        if self.repeated and "window_s" in self.fields:
            return self.repeated
        return 1 + self.repeated

    @property
    def where(self) -> str:
        return next((v for v in (self.route, self.model, self.method, self.provider, self.file) if v), "")

    @property
    def span(self) -> tuple[float | None, float | None]:
        """First and last occurrence this line stands for (a flush summary's own time is not one)."""
        if self.repeated and "window_s" in self.fields and self.first_seen is not None:
            return self.first_seen, self.last_seen if self.last_seen is not None else self.first_seen
        first = min((t for t in (self.ts, self.first_seen) if t is not None), default=None)
        last = max((t for t in (self.ts, self.last_seen) if t is not None), default=None)
        return first, last


def parse_time(value: str) -> float | None:
    """ISO-8601 (with Z, an offset, or none = UTC) to epoch seconds."""
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace(",", "."))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def parse_since(value: str, now: float | None = None) -> float:
    """`--since`: an ISO time, or a duration back from now such as 90s, 15m, 1h, 2d or 1h30m."""
    text = value.strip().lower()
    match = _DURATION.match(text)
    if text and match and any(match.groups()):
        days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
        return (time.time() if now is None else now) - (days * 86400 + hours * 3600 + minutes * 60 + seconds)
    parsed = parse_time(value)
    if parsed is None:
        raise ValueError(
            f"--since takes an ISO time (2026-03-10T14:00:00Z) or a duration (90s, 15m, 1h, 2d): {value!r}"
        )
    return parsed


def _str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _float(value: Any) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return parse_time(value)
    return None


def from_json(payload: dict[str, Any], source: str, line: int) -> Record:
    status = payload.get("status")
    repeated = payload.get("repeated")
    record = Record(
        ts=_float(payload.get("ts")),
        level=str(payload.get("level") or "INFO").upper(),
        service=str(payload.get("service") or Path(source).stem),
        logger=str(payload.get("logger") or ""),
        event=str(payload.get("event") or payload.get("message") or ""),
        reason=_str(payload.get("reason")),
        source=source,
        line=line,
        request_id=_str(payload.get("request_id")),
        trace_id=_str(payload.get("trace_id")),
        first_request_id=_str(payload.get("first_request_id")),
        route=_str(payload.get("route")),
        method=_str(payload.get("method")),
        model=_str(payload.get("model")),
        provider=_str(payload.get("provider")),
        status=status if isinstance(status, int) else None,
        code=_str(payload.get("code")),
        first_cause=_str(payload.get("first_cause")),
        repeated=repeated if isinstance(repeated, int) else 0,
        first_seen=_float(payload.get("first_seen")),
        last_seen=_float(payload.get("last_seen")),
        fields=payload,
    )
    if record.reason is None:
        _apply_legacy(record, record.event)
    return record


def from_plain(text: str, source: str, line: int, last_ts: float | None) -> Record | None:
    """A plain-text line becomes a record only when a legacy recogniser knows it; the rest is noise."""
    record = Record(
        ts=last_ts,
        level="INFO",
        service=Path(source).stem,
        logger="",
        event=text,
        reason=None,
        source=source,
        line=line,
    )
    if not _apply_legacy(record, text):
        return None
    stamp = _PLAIN_TS.search(text)
    if stamp:
        date, clock, fraction, zone = stamp.groups()
        iso = f"{date}T{clock}{'.' + fraction if fraction else ''}{zone or ''}"
        record.ts = parse_time(iso) or last_ts
    level = _PLAIN_LEVEL.search(text)
    if level:
        record.level = "WARNING" if level.group(1) == "WARN" else level.group(1)
    source_match = _LOGURU_SOURCE.search(text)
    if source_match:
        function = source_match.group("function")
        record.logger = source_match.group("module") + (f":{function}" if function else "")
    elif _UVICORN.match(text):
        record.logger = "uvicorn"
    if record.route:
        record.route = "/".join("{id}" if _ID_SEGMENT.match(part) else part for part in record.route.split("/"))
    return record


def _apply_legacy(record: Record, text: str) -> bool:
    match = recognise(text)
    if match is None:
        return False
    record.legacy = match.signature
    record.exact = match.exact
    if match.implies:
        record.implies = match.implies
    else:
        record.reason = match.reason
    record.event = match.signature
    record.route = match.route or record.route
    record.method = match.method or record.method
    record.model = match.model or record.model
    record.file = match.file or record.file
    if match.level and record.severity < LEVELS[match.level]:
        record.level = match.level
    return True


_QUIET_LEVELS = ('"level":"INFO"', '"level":"DEBUG"', '"level": "INFO"', '"level": "DEBUG"')
KEEP_EVENTS = ("listening", "index ready", "readiness changed")  # INFO lines the questions read


def _quiet(text: str) -> bool:
    """An INFO/DEBUG JSON line with no code and no event the tracker reads: skipped unparsed, which
    is most of a day's lines."""
    return (
        '"reason"' not in text
        and any(level in text for level in _QUIET_LEVELS)
        and not any(f'"{event}"' in text for event in KEEP_EVENTS)
    )


def parse_lines(lines: Iterable[str], source: str) -> Iterator[tuple[Record | None, float | None]]:
    """Each line as a record (None for noise), with the last timestamp seen in this source so far."""
    last_ts: float | None = None
    for number, raw in enumerate(lines, 1):
        text = raw.strip()
        if not text:
            continue
        record: Record | None = None
        if text.startswith("{") and _quiet(text):
            yield None, last_ts
            continue
        if text.startswith("{"):
            try:
                payload = json.loads(text)
            except json.JSONDecodeError:
                payload = None
            if isinstance(payload, dict):
                record = from_json(payload, source, number)
        if record is None:
            record = from_plain(text, source, number, last_ts)
        if record is not None and record.ts is not None:
            last_ts = record.ts
        yield record, last_ts


def log_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(LOG_SUFFIXES))
    return [path]


def read_sources(paths: Iterable[str]) -> Iterator[tuple[str, Iterable[str]]]:
    """(source name, lines) for each file, each log file under a directory, or stdin ('-')."""
    for given in paths:
        if given == "-":
            yield "stdin", sys.stdin
            continue
        for path in log_files(Path(given)):
            with path.open(encoding="utf-8", errors="replace") as handle:
                yield str(path), handle.readlines()
