"""The triage rules: group failure lines by signature, link each trace's lines to its first failing
subsystem, attach the rest as downstream effects, and describe one issue per root cause.

Linking. Lines that share a trace id or a request id (or a collapsed line's first_request_id),
in any process, form one trace. The trace's root is its earliest failure line; on a tie the
callee (a gRPC service) wins over the gateway. A root line that names a `first_cause` (the llm's
ALL_PROVIDERS_FAILED) is filed under that cause. Logs collapse repeated signatures (one line a
minute per signature), so many failing requests leave only the gateway's line: a gateway-only
trace whose code was seen, in a linked trace, as an effect of another code (or was logged first by
a service in a linked trace) is attached to that root's issue when it falls inside the root's
active span (first line to last line plus the 60 s collapse window): an inferred link.

Confidence, one point each, High = 3, Medium = 2, Low = 0-1 (an uncatalogued code is always Low):
- the code is catalogued and the line names it exactly (a legacy line that does not say why it
  failed maps inexactly);
- repeated evidence: the root or its downstream effects occurred at least twice, or two traces
  link it;
- causal order: in every directly linked trace the earliest failure is in the callee (time order
  and call order agree) and the root preceded its first effect; with no effects, nothing
  contradicts it; an issue whose effects are linked only by inference gets no point here.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from libs.rca.questions import answer
from libs.rca.records import Record
from libs.runtime.reasons import CATALOG, Klass, Reason

COLLAPSE_WINDOW_S = 60.0  # libs.runtime.logs: one line per signature per minute
OUTERMOST = {"gateway"}
GENERIC_SUBSYSTEMS = {"gateway", "runtime"}
SEVERITIES = ("Low", "Medium", "High")
BASE_SEVERITY = {"info": 0, "warning": 1, "error": 2}
CLASS_WORDS = {
    "CONFIG": "configuration problem (an operator changes a setting)",
    "UPSTREAM": "upstream dependency failed (not a bug in the caller)",
    "CLIENT": "client error (callers send requests that must be refused)",
    "DEFECT": "code defect (a bug in Inkwell)",
    "UNCATALOGUED": "uncatalogued code (not in libs/runtime/reasons.py)",
}


@dataclass
class Signature:
    reason: str
    service: str
    logger: str
    where: str
    example: str
    level: str
    count: int
    first_seen: str | None
    last_seen: str | None
    statuses: dict[str, int]
    legacy: bool


@dataclass
class Issue:
    title: str
    reason: str
    status: str
    severity: str
    subsystem: str
    klass: str
    first_failing: str
    expected: bool
    signatures: list[Signature]
    effects: list[Signature]
    endpoints: list[str]
    behaviour: list[str]
    hypothesis: list[str]
    confidence: str
    confidence_basis: list[str]
    files: list[str]
    fix: str
    validation: list[str]
    questions: list[str]
    first_seen: str | None
    last_seen: str | None
    requests: int
    traces_linked: int
    traces_inferred: int


@dataclass
class Tracker:
    window_start: str | None
    window_end: str | None
    sources: list[str]
    lines_read: int
    records: int
    legacy_lines: int
    issues: list[Issue]
    unclassified: list[Signature]
    notes: list[str] = field(default_factory=list)


@dataclass
class _Group:
    root: Record
    code: str
    records: list[Record]
    ordered: bool

    @property
    def direct(self) -> bool:
        return len(self.records) > 1

    @property
    def ts(self) -> float:
        """When the trace began failing (a collapsed line's repeats began at its first_seen)."""
        return self.root.span[0] or 0.0


@dataclass
class _Entry:
    code: str
    roots: list[Record] = field(default_factory=list)
    effects: list[Record] = field(default_factory=list)
    groups: list[_Group] = field(default_factory=list)
    inferred: int = 0


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def code_of(record: Record) -> str | None:
    return record.reason or record.implies


def is_failure(record: Record) -> bool:
    """A line that reports something going wrong: a catalogued code at WARNING or worse, a failed
    call logged at INFO (a refused token is the client's doing, so auth logs it at INFO), or a
    recognised legacy line."""
    code = code_of(record)
    if not code or code == "OK":
        return False
    if record.legacy or record.severity >= 30:
        return True
    return (record.status or 0) >= 400 or record.code not in (None, "OK")


def _depth(record: Record) -> int:
    return 1 if record.service in OUTERMOST else 0


def _groups(failures: list[Record]) -> list[_Group]:
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, r in enumerate(failures):
        node = find(f"#{i}")
        keys = (
            f"t:{r.trace_id}" if r.trace_id else None,
            f"r:{r.request_id}" if r.request_id else None,
            f"r:{r.first_request_id}" if r.first_request_id else None,
        )
        for key in keys:
            if key:
                parent[find(key)] = node
    members: dict[str, list[Record]] = defaultdict(list)
    for i, r in enumerate(failures):
        members[find(f"#{i}")].append(r)
    groups = []
    for records in members.values():
        records.sort(key=lambda r: (r.ts if r.ts is not None else float("inf"), _depth(r), r.line))
        root = next((r for r in records if r.implies is None), records[0])
        code = root.implies or root.reason or ""
        if root.first_cause and root.first_cause in CATALOG:
            code = root.first_cause
        inner = [r for r in records if _depth(r) == 0]
        ordered = not (inner and _depth(root) > 0)
        groups.append(_Group(root, code, records, ordered))
    return sorted(groups, key=lambda g: g.ts)


def _entries(groups: list[_Group]) -> dict[str, _Entry]:
    edges: dict[str, Counter[str]] = defaultdict(Counter)
    for g in groups:
        for r in g.records:
            code = code_of(r)
            if r is not g.root and code and code != g.code:
                edges[code][g.code] += 1
    entries: dict[str, _Entry] = {}
    for g in groups:
        entry = entries.setdefault(g.code, _Entry(g.code))
        entry.groups.append(g)
        for r in g.records:
            (entry.effects if r.implies or (r is not g.root) else entry.roots).append(r)
    # The gateway's own line for a code that a service logged first elsewhere (its repeats collapse
    # separately, so later requests leave only the gateway's line) is an effect of that code too.
    for entry in entries.values():
        inner = [r for g in entry.groups if _depth(g.root) == 0 and g.direct for r in g.records if r is g.root]
        if not inner:
            continue
        start, end = _active(inner)
        moved = {id(g.root) for g in entry.groups if _depth(g.root) > 0 and not g.direct and start <= g.ts <= end}
        if moved:
            entry.effects.extend(r for r in entry.roots if id(r) in moved)
            entry.roots = [r for r in entry.roots if id(r) not in moved]
            entry.inferred += len(moved)
    # Attach traces whose root code is a known effect of another issue, inside that issue's span.
    for code in list(entries):
        targets = [t for t, _ in edges.get(code, Counter()).most_common() if t in entries and t != code]
        if not targets:
            continue
        target = entries[targets[0]]
        if not target.roots:
            continue
        start, end = _active(target.roots)
        entry = entries[code]
        keep = []
        for g in entry.groups:
            # Only the gateway's lines lose their link this way; a service's own root stays its own.
            if _depth(g.root) > 0 and start <= g.ts <= end:
                target.effects.extend(g.records)
                target.inferred += 1
            else:
                keep.append(g)
        if not keep:
            del entries[code]
        elif len(keep) != len(entry.groups):
            entries[code] = _Entry(code, groups=keep, inferred=entry.inferred)
            for g in keep:
                for r in g.records:
                    (entries[code].effects if r.implies or r is not g.root else entries[code].roots).append(r)
    return entries


def _active(roots: list[Record]) -> tuple[float, float]:
    """A root's active span: its first line to its last plus the collapse window (repeats inside a
    minute leave no line of their own)."""
    spans = [r.span for r in roots]
    starts = [s for s, _ in spans if s is not None] or [float("inf")]
    ends = [e for _, e in spans if e is not None] or [float("-inf")]
    return min(starts) - 1.0, max(ends) + COLLAPSE_WINDOW_S + 1.0


def _signatures(records: Iterable[Record]) -> list[Signature]:
    buckets: dict[tuple[str, str, str, str, str], list[Record]] = defaultdict(list)
    for r in records:
        label = r.reason or (f"{r.implies} (effect)" if r.implies else "")
        if r.first_cause and r.first_cause != r.reason:
            label = f"{r.reason} (first cause {r.first_cause})"
        buckets[(label, r.service, r.logger, r.where, r.legacy or "")].append(r)
    out = []
    for (label, service, logger, where, _), rs in buckets.items():
        firsts = [s for s, _ in (r.span for r in rs) if s is not None]
        lasts = [e for _, e in (r.span for r in rs) if e is not None]
        statuses: Counter[str] = Counter()
        for r in rs:
            if r.status is not None:
                statuses[str(r.status)] += r.count
        worst = max(rs, key=lambda r: r.severity)
        out.append(
            Signature(
                reason=label,
                service=service,
                logger=logger,
                where=where,
                example=_example(rs[0]),
                level=worst.level,
                count=sum(r.count for r in rs),
                first_seen=iso(min(firsts)) if firsts else None,
                last_seen=iso(max(lasts)) if lasts else None,
                statuses=dict(statuses),
                legacy=any(r.legacy for r in rs),
            )
        )
    return sorted(out, key=lambda s: (s.first_seen or "", s.service))


def _example(record: Record) -> str:
    text = record.legacy or record.event
    detail = record.fields.get("detail")
    if isinstance(detail, str) and detail and detail not in text:
        text = f"{text}: {detail}"
    return " ".join(text.split())[:240]


def _subsystem(entry: Reason | None, first: Record) -> str:
    if entry is None:
        return first.logger.removeprefix("inkwell.").split(".")[0] or first.service
    if entry.subsystem in GENERIC_SUBSYSTEMS and first.service not in OUTERMOST and not first.legacy:
        area = first.logger.removeprefix("inkwell.").split(".")[0]
        return area if first.logger.startswith("inkwell.") and area not in ("rpc", "server") else first.service
    return entry.subsystem


def _endpoints(records: Iterable[Record]) -> list[str]:
    seen: Counter[str] = Counter()
    for r in records:
        if r.route and (r.route.startswith("/") or r.legacy):
            verb = r.method if r.method and not r.method.startswith("/") else (r.fields.get("http_method") or "")
            status = f" -> {r.status}" if r.status else ""
            seen[f"{r.service}: {verb + ' ' if verb else ''}{r.route}{status}"] += r.count
        if r.method and r.method.startswith("/"):
            status = f" -> {r.code}" if r.code else ""
            seen[f"{r.service}: rpc {r.method}{status}"] += r.count
    return [f"{k} (x{v})" for k, v in sorted(seen.items())]


def _confidence(entry: _Entry, catalog: Reason | None, root_count: int) -> tuple[str, list[str]]:
    basis = []
    points = 0
    exact = all(r.exact for r in entry.roots + entry.effects)
    if catalog is None:
        basis.append(f"{entry.code} is not in the catalog: the cause is a guess (capped at Low)")
    elif exact:
        points += 1
        basis.append(f"+1 catalogued code {entry.code} ({catalog.klass.value}), named exactly by the log line")
    else:
        basis.append(f"+0 the log lines do not say why they failed; {entry.code} is the closest catalogued code")
    linked = sum(1 for g in entry.groups if g.direct)
    effect_count = sum(r.count for r in entry.effects)
    counts = f"{root_count} root and {effect_count} downstream occurrence(s), {linked} linked trace(s)"
    if root_count >= 2 or effect_count >= 2 or linked >= 2:
        points += 1
        basis.append(f"+1 repeated evidence: {counts}")
    else:
        basis.append(f"+0 a single occurrence: {counts}")
    disordered = [g for g in entry.groups if g.direct and not g.ordered]
    first_root = min((r.ts for r in entry.roots if r.ts is not None), default=None)
    first_effect = min((r.ts for r in entry.effects if r.ts is not None), default=None)
    precedes = first_root is not None and (first_effect is None or first_root <= first_effect)
    if not entry.roots:
        basis.append("+0 the root itself was not logged, only its effects")
    elif disordered:
        basis.append(f"+0 in {len(disordered)} trace(s) the gateway failed before the service it called")
    elif entry.inferred and linked == 0:
        basis.append(f"+0 effects linked only by inference ({entry.inferred} trace(s)), not by a shared trace id")
    elif not precedes:
        basis.append("+0 an effect was logged before the root's first line")
    else:
        points += 1
        if not entry.effects:
            basis.append("+1 causal order: no other failure competes in its traces")
        elif linked:
            basis.append(
                "+1 causal order: the root precedes every effect and each trace's first failure is in the callee"
            )
        else:
            basis.append("+1 causal order: the root's first line precedes its first effect (legacy signatures)")
    level = "Low" if catalog is None else ("Low", "Low", "Medium", "High")[points]
    return level, basis


def _severity(catalog: Reason | None, entry: _Entry) -> str:
    if catalog is not None and catalog.expected:
        return "Low"
    rank = BASE_SEVERITY.get(catalog.severity, 1) if catalog else 1
    roots_services = {r.service for r in entry.roots}
    spread = any(r.service not in roots_services or (r.status or 0) >= 500 for r in entry.effects)
    spread = spread or any(r.implies for r in entry.effects)
    if spread:
        rank += 1
    if catalog is not None and catalog.klass is Klass.CLIENT:
        rank = min(rank, 1)
    return SEVERITIES[min(rank, 2)]


def _behaviour(entry: _Entry, roots: list[Signature], effects: list[Signature]) -> list[str]:
    lines = []
    for s in roots:
        where = f" at {s.where}" if s.where else ""
        lines.append(f"{s.service} ({s.logger or 'plain text'}) logged {s.reason}{where} x{s.count}: {s.example}")
    for s in effects:
        answered = ", ".join(f"{k} x{v}" for k, v in sorted(s.statuses.items()))
        where = f" on {s.where}" if s.where else ""
        status = f", answering {answered}" if answered else f" x{s.count}"
        lines.append(f"downstream: {s.service} ({s.logger or 'plain text'}) {s.reason}{where}{status}")
    if entry.inferred:
        lines.append(
            f"{entry.inferred} more failing trace(s) carried only a downstream line inside this root's active span"
            " (the services log one line per signature per minute) and are attached here"
        )
    return lines


def _hypothesis(catalog: Reason | None, code: str, first: str, effects: list[Signature], startup: bool) -> list[str]:
    if catalog is None:
        return [f"{code} is not catalogued: read the example lines and add it to libs/runtime/reasons.py."]
    if catalog.expected:
        return [f"Expected behaviour, not a defect: {catalog.remedy}."]
    lead = {
        Klass.CONFIG: f"Configuration problem first seen in {first}",
        Klass.UPSTREAM: f"A dependency of {first} failed",
        Klass.CLIENT: f"Callers send requests that {first} must refuse",
        Klass.DEFECT: f"Code defect in {first}",
    }[catalog.klass]
    out = [f"{lead}: {catalog.remedy}."]
    if startup:
        out.append("It was logged before any request (startup or a background check), so it is a standing condition.")
    if effects:
        names = sorted({f"{s.service} {s.reason.split(' ')[0]}" for s in effects})
        out.append(f"The downstream lines ({', '.join(names)}) are consequences of it, not separate issues.")
    return out


def _validation(catalog: Reason | None, code: str, entry: _Entry) -> list[str]:
    if catalog is not None and catalog.expected:
        return ["None needed; confirm it appears only in development logs."]
    steps = [f"`inkwell rca --since 10m` over fresh logs of the same traffic lists no {code} issue."]
    routes = sorted({r.route for r in entry.effects + entry.roots if r.route and r.route.startswith("/")})
    if routes:
        steps.append(f"{', '.join(routes)}: each answers 2xx for a valid request.")
    if catalog is not None and catalog.klass in (Klass.CONFIG, Klass.UPSTREAM):
        steps.append(f"`inkwell doctor` shows no FAIL or WARN naming {code}.")
    if catalog is not None and catalog.klass is Klass.DEFECT:
        steps.append("A regression test reproduces the failing request and passes after the fix.")
    return steps


def build(
    records: list[Record],
    sources: list[str],
    lines_read: int,
    window: tuple[float | None, float | None] = (None, None),
) -> Tracker:
    """The tracker for `records` (already bounded to the window)."""
    failures = [r for r in records if is_failure(r)]
    known = [r for r in failures if code_of(r)]
    unclassified_lines = [r for r in records if r.severity >= 30 and not code_of(r)]
    entries = _entries(_groups(known))
    stamps = [t for r in records for t in r.span if t is not None]
    window_end = window[1] if window[1] is not None else (max(stamps) if stamps else None)
    issues = []
    for code, entry in entries.items():
        catalog = CATALOG.get(code)
        roots_sorted = sorted(entry.roots or entry.effects, key=lambda r: r.ts or 0.0)
        first = roots_sorted[0]
        roots = _signatures(entry.roots)
        effects = _signatures(entry.effects)
        root_count = sum(r.count for r in entry.roots)
        confidence, basis = _confidence(entry, catalog, root_count)
        everything = entry.roots + entry.effects
        firsts = [s for s, _ in (r.span for r in everything) if s is not None]
        lasts = [e for _, e in (r.span for r in everything) if e is not None]
        first_failing = f"{first.service}" + (f" ({first.logger})" if first.logger else "")
        subsystem = _subsystem(catalog, first)
        startup = bool(entry.roots) and first.request_id is None and first.trace_id is None and not first.legacy
        expected = bool(catalog and catalog.expected)
        klass = catalog.klass.value if catalog else "UNCATALOGUED"
        issues.append(
            Issue(
                title=_title(code, catalog, first, subsystem),
                reason=code,
                status="Observed" if expected else "Open",
                severity=_severity(catalog, entry),
                subsystem=subsystem,
                klass=klass,
                first_failing=first_failing,
                expected=expected,
                signatures=roots,
                effects=effects,
                endpoints=_endpoints(everything),
                behaviour=_behaviour(entry, roots, effects),
                hypothesis=_hypothesis(catalog, code, first_failing, effects, startup),
                confidence=confidence,
                confidence_basis=basis,
                files=_files(catalog, everything),
                fix=catalog.remedy if catalog else "add the code to libs/runtime/reasons.py with its remedy",
                validation=_validation(catalog, code, entry),
                questions=answer(code, subsystem, everything, records, failures, window_end),
                first_seen=iso(min(firsts)) if firsts else None,
                last_seen=iso(max(lasts)) if lasts else None,
                requests=len({r.request_id for r in everything if r.request_id}),
                traces_linked=sum(1 for g in entry.groups if g.direct),
                traces_inferred=entry.inferred,
            )
        )
    rank = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    issues.sort(key=lambda i: (i.expected, rank[i.severity], i.first_seen or ""))
    return Tracker(
        window_start=iso(window[0]) if window[0] is not None else (iso(min(stamps)) if stamps else None),
        window_end=iso(window_end),
        sources=sources,
        lines_read=lines_read,
        records=len(records),
        legacy_lines=sum(1 for r in records if r.legacy),
        issues=issues,
        unclassified=_unclassified(unclassified_lines),
        notes=_cross_notes(issues),
    )


def _cross_notes(issues: list[Issue]) -> list[str]:
    """What the seed's cross-issue notes record, where the logs show it: configuration problems of
    one subsystem that may share a cause, and failures a fallback hides from users."""
    notes = []
    config: dict[str, list[str]] = defaultdict(list)
    for i in issues:
        if i.klass == "CONFIG" and not i.expected:
            config[i.subsystem].append(i.reason)
    for subsystem, codes in sorted(config.items()):
        if len(codes) > 1:
            notes.append(
                f"{', '.join(codes)} are all {subsystem} configuration problems in the same window: one wrong"
                " setting may explain several; fix the one that failed first and re-run."
            )
    for i in issues:
        hidden = [s for s in i.effects + i.signatures if "fallback" in s.example.lower()]
        if hidden and not i.expected:
            notes.append(
                f"{i.reason} is hidden from users by a fallback ({sum(s.count for s in hidden)} line(s)): "
                "requests still succeed, degraded, so the failure shows only here."
            )
    return notes


def _files(catalog: Reason | None, records: list[Record]) -> list[str]:
    """The legacy modules named by the legacy lines themselves, then the catalog's Inkwell files."""
    legacy = sorted({r.logger.split(":")[0] for r in records if r.legacy and "." in r.logger})
    out = [f"{module.replace('.', '/')}.py (legacy backend, named by its log lines)" for module in legacy]
    return out + (list(catalog.files) if catalog else [])


def _title(code: str, catalog: Reason | None, first: Record, subsystem: str) -> str:
    if first.legacy and catalog is not None:
        return f"{first.legacy} ({code}, {subsystem})"
    what = {
        "CONFIG": "configuration",
        "UPSTREAM": "upstream failure",
        "CLIENT": "refused requests",
        "DEFECT": "defect",
    }.get(catalog.klass.value if catalog else "", "uncatalogued")
    if catalog is not None and catalog.expected:
        what = "expected behaviour"
    return f"{code} in {subsystem} ({what})"


def _unclassified(records: list[Record]) -> list[Signature]:
    """WARNING-or-worse lines without a code, grouped by process, logger and message shape."""
    shaped = []
    for r in records:
        copy = Record(**{**r.__dict__, "reason": _shape(r.event)})
        shaped.append(copy)
    return _signatures(shaped)


def _shape(event: str) -> str:
    text = event.splitlines()[0] if event else ""
    out = []
    for word in text.split():
        out.append("#" if any(c.isdigit() for c in word) or word.startswith(("http://", "https://")) else word)
    return " ".join(out)[:120]
