"""Whether the index's storage can be written: a read-only or full volume makes the index
NOT_SERVING with STORAGE_NOT_WRITABLE (instead of INTERNAL_DEFECT on every write while health says
SERVING), and it serves again once a write succeeds.

Two signals: a failed write (EROFS, ENOSPC, EDQUOT, EACCES, EPERM, or SQLite's read-only / full /
I/O errors), and a probe that writes, fsyncs and removes a small file in the index directory at
start and every INKWELL_INDEX_STORAGE_PROBE_S seconds.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
from pathlib import Path

import grpc

from libs.runtime.errors import ServiceError

log = logging.getLogger("inkwell.index.storage")

UNWRITABLE_ERRNOS = frozenset({errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM})
SQLITE_UNWRITABLE = ("readonly database", "database or disk is full", "disk i/o error", "unable to open database")
PROBE_BYTES = 4096
RETRY_AFTER_S = 5.0


def unwritable_reason(exc: BaseException) -> str | None:
    """A short description if `exc` says the storage cannot be written, else None."""
    if isinstance(exc, OSError) and exc.errno in UNWRITABLE_ERRNOS:
        return f"{errno.errorcode.get(exc.errno or 0, 'OSError')}: {exc.strerror}"
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        if any(marker in text for marker in SQLITE_UNWRITABLE):
            return f"SQLite: {text[:120]}"
    return None


def probe(directory: Path) -> str | None:
    """Write, fsync and remove a probe file in `directory`; None if that worked, else why not."""
    path = directory / f".write-probe-{os.getpid()}"
    try:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"\0" * PROBE_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
        path.unlink()
    except OSError as exc:
        return unwritable_reason(exc) or f"{type(exc).__name__}: {exc.strerror}"
    return None


def refusal(detail: str) -> ServiceError:
    return ServiceError(
        grpc.StatusCode.UNAVAILABLE,
        "STORAGE_NOT_WRITABLE",
        f"the index storage cannot be written ({detail}); the write was not stored",
        {"cause": detail},
        retry_after_s=RETRY_AFTER_S,
    )
