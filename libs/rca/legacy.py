"""Recognisers for the legacy backend's plain-text signatures (the ones the hand-written RCA tracker
records), mapped onto Inkwell reason codes, so a team moving from the old backend gets its tracker
back from its old logs. Uvicorn's own reload line is recognised in Inkwell's JSON logs too."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Recogniser:
    pattern: re.Pattern[str]
    reason: str  # the Inkwell code this line is, or (with `effect`) the code it is a consequence of
    signature: str  # the legacy signature, without the variable parts
    effect: bool = False
    exact: bool = True  # False: the line does not say which cause it is (the code is a best mapping)
    level: str | None = None  # the level the old backend logged it at, when its line does not say


@dataclass(frozen=True)
class Match:
    reason: str
    signature: str
    exact: bool
    implies: str | None
    level: str | None
    route: str | None = None
    method: str | None = None
    model: str | None = None
    file: str | None = None


RECOGNISERS = (
    # Issue 1: the old auth middleware fell back to an unverified decode, which production refuses.
    # It never says why Clerk verification failed, so the mapping is inexact.
    Recogniser(
        re.compile(r"Unverified token rejected \(production\)"),
        "TOKEN_UNVERIFIED",
        "Unverified token rejected (production)",
        exact=False,
        level="WARNING",
    ),
    Recogniser(
        re.compile(
            r"AUTHENTICATION ERROR: Token verification failed for endpoint: (?P<method>[A-Z]+) (?P<route>/[^\s?]*)"
        ),
        "TOKEN_UNVERIFIED",
        "AUTHENTICATION ERROR: Token verification failed for endpoint",
        effect=True,
        level="ERROR",
    ),
    # Issue 2: the Hugging Face router does not serve the configured model id.
    Recogniser(
        re.compile(r"HF structured model not found \(no response_format path\): (?P<model>[\w./:-]+)"),
        "MODEL_UNAVAILABLE",
        "HF structured model not found (no response_format path)",
        level="WARNING",
    ),
    Recogniser(
        re.compile(r"HF structured model not found: (?P<model>[\w./:-]+?)\.?(?:\s|$)"),
        "MODEL_UNAVAILABLE",
        "HF structured model not found. Trying fallback model.",
        level="WARNING",
    ),
    Recogniser(
        re.compile(r"Hugging Face API call failed: Not Found"),
        "MODEL_UNAVAILABLE",
        "Hugging Face API call failed: Not Found",
        effect=True,
        level="ERROR",
    ),
    Recogniser(
        re.compile(r"Hugging Face structured JSON generation failed: NotFoundError"),
        "MODEL_UNAVAILABLE",
        "Hugging Face structured JSON generation failed: NotFoundError",
        effect=True,
        level="ERROR",
    ),
    Recogniser(
        re.compile(r"\[llm_text_gen\] Provider huggingface failed: RetryError"),
        "MODEL_UNAVAILABLE",
        "[llm_text_gen] Provider huggingface failed: RetryError",
        effect=True,
        level="ERROR",
    ),
    # Issue 3: indexing attempted before the txtai service finished initialising.
    Recogniser(
        re.compile(r"Cannot index content - service not initialized"),
        "INDEX_NOT_READY",
        "Cannot index content - service not initialized",
        level="ERROR",
    ),
    # Issue 4: a development reload (expected behaviour).
    Recogniser(
        re.compile(r"StatReload detected changes in '(?P<file>[^']+)'\. Reloading"),
        "DEV_RELOAD",
        "StatReload detected changes. Reloading...",
        level="WARNING",
    ),
)


def recognise(text: str) -> Match | None:
    """The first recogniser that matches `text`, with its variable parts (never a user id)."""
    for r in RECOGNISERS:
        found = r.pattern.search(text)
        if found is None:
            continue
        groups = found.groupdict()
        return Match(
            reason=r.reason,
            signature=r.signature,
            exact=r.exact,
            implies=r.reason if r.effect else None,
            level=r.level,
            route=groups.get("route"),
            method=groups.get("method"),
            model=groups.get("model"),
            file=groups.get("file"),
        )
    return None
