"""Collapse identical failure lines: the first is logged at once, repeats within the window are
counted and reported as one line with the count when the window closes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Window:
    started: float
    first_seen: float
    last_seen: float
    count: int = 0
    fields: dict[str, Any] = field(default_factory=dict)


class CollapsingLogger:
    def __init__(
        self,
        logger: logging.Logger,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.logger = logger
        self.window_s = window_s
        self.clock = clock
        self._windows: dict[Hashable, _Window] = {}

    def log(self, level: int, message: str, key: Hashable, **fields: Any) -> bool:
        """Log now if `key` has not been seen in this window; else count it. True when written."""
        now = self.clock()
        window = self._windows.get(key)
        if window is not None and now - window.started >= self.window_s:
            self._flush(key, window, level, message)
            window = None
        if window is None:
            self._windows[key] = _Window(started=now, first_seen=now, last_seen=now, fields=fields)
            self.logger.log(level, message, extra=fields)
            return True
        window.count += 1
        window.last_seen = now
        return False

    def flush(self, level: int = logging.WARNING, message: str = "repeated failures", force: bool = False) -> None:
        """Report windows that have closed (all of them with force=True)."""
        now = self.clock()
        for key, window in list(self._windows.items()):
            if force or now - window.started >= self.window_s:
                self._flush(key, window, level, message)
                del self._windows[key]

    def _flush(self, key: Hashable, window: _Window, level: int, message: str) -> None:
        if window.count:
            self.logger.log(
                level,
                f"{message} (repeated)",
                extra={
                    **window.fields,
                    "repeated": window.count,
                    "first_seen": window.first_seen,
                    "last_seen": window.last_seen,
                    "window_s": self.window_s,
                },
            )
