"""How much memory a model may use: the smaller of what the host has free and what the cgroup
(container limit) still allows. psutil alone ignores container limits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psutil

MemoryProbe = Callable[[], int]

_CGROUP_V2 = Path("/sys/fs/cgroup")
_CGROUP_V1 = Path("/sys/fs/cgroup/memory")


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text or text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return None if value >= 1 << 60 else value  # v1 reports "no limit" as a huge number


def cgroup_headroom_bytes() -> int | None:
    """Bytes left under the cgroup memory limit, or None when there is no limit."""
    for limit_file, usage_file in (
        (_CGROUP_V2 / "memory.max", _CGROUP_V2 / "memory.current"),
        (_CGROUP_V1 / "memory.limit_in_bytes", _CGROUP_V1 / "memory.usage_in_bytes"),
    ):
        limit = _read_int(limit_file)
        if limit is not None:
            usage = _read_int(usage_file) or 0
            return max(0, limit - usage)
    return None


def available_memory_bytes() -> int:
    available = int(psutil.virtual_memory().available)
    headroom = cgroup_headroom_bytes()
    return available if headroom is None else min(available, headroom)
