"""The shared service key: how an Inkwell service (the gateway's outbox) proves itself to the auth
service when it needs an internal identity without a session token at hand.

INKWELL_SERVICE_KEY on both sides, or (when unset) a random key the auth service writes once to
`<data dir>/auth/service.key`, which a gateway sharing that data directory reads.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

METADATA_KEY = "x-inkwell-service-key"
KEY_FILE = Path("auth") / "service.key"


def key_file(data_dir: Path) -> Path:
    return data_dir / KEY_FILE


def read_service_key(configured: str, data_dir: Path) -> str | None:
    """The configured key, else the key file's, else None (nothing to prove ourselves with)."""
    if configured:
        return configured
    path = key_file(data_dir)
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        return None
    return value or None


def ensure_service_key(configured: str, data_dir: Path) -> str:
    """The auth side: the configured key, or the key file's, created (0600) on first start."""
    existing = read_service_key(configured, data_dir)
    if existing is not None:
        return existing
    path = key_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def matches(expected: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(expected.encode(), presented.encode())
