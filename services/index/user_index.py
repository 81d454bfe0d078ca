"""One user's txtai index on disk: exact (IDMap,Flat) search, saved atomically.

Layout: users/<sha256(user)[:32]>/CURRENT names the live generation directory gen-<seq>, which
holds txtai's files plus applied.json (the store sequence it reflects). A save writes a new
generation aside, fsyncs it, then swaps CURRENT with os.replace, so a crash leaves either the old
or the new generation, never a torn one. All methods run on the engine's single worker thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("inkwell.index.user_index")

CURRENT = "CURRENT"
APPLIED = "applied.json"
# Generations saved before applied.json named their engine were encoded by txtai's fp32 default.
LEGACY_ENGINE = "torch-fp32"


class IndexDamaged(Exception):
    """The index on disk cannot be loaded; it must be rebuilt from the store."""


def user_key(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()[:32]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class UserIndex:
    def __init__(self, root: Path, user_id: str, new_embeddings: Any, engine: str = LEGACY_ENGINE) -> None:
        self.user_id = user_id
        self.engine = engine  # the encoder every vector of this index must come from
        self.dir = root / "users" / user_key(user_id)
        self._new = new_embeddings  # () -> a fresh txtai Embeddings sharing the loaded model
        self.embeddings: Any = None
        self.applied_seq = 0
        self.saved_seq = 0
        self.saved_at = time.monotonic()

    # --- disk -----------------------------------------------------------------------------------

    def load(self) -> None:
        """Load the live generation, or start empty when there is none. Raises IndexDamaged."""
        pointer = self.dir / CURRENT
        if not pointer.exists():
            self.embeddings, self.applied_seq = self._new(), 0
            return
        try:
            generation = self.dir / pointer.read_text().strip()
            applied = json.loads((generation / APPLIED).read_text())
            built_with = str(applied.get("engine", LEGACY_ENGINE))
            if built_with != self.engine:
                # Vectors of another encoder live in another space: re-encode every stored document
                # (the store is the source of truth) instead of mixing them with today's queries.
                log.warning(
                    "index built with another encoder; re-encoding it from the stored documents",
                    extra={"reason": "INDEX_REENCODING", "built_with": built_with, "engine": self.engine},
                )
                self.embeddings, self.applied_seq, self.saved_seq = self._new(), 0, 0
                return
            embeddings = self._new(load=generation)
            if embeddings.count() != applied["count"]:
                raise ValueError(f"index holds {embeddings.count()} vectors, expected {applied['count']}")
        except Exception as exc:
            raise IndexDamaged(f"{type(exc).__name__}: {exc}"[:300]) from exc
        self.embeddings, self.applied_seq = embeddings, int(applied["seq"])
        self.saved_seq = self.applied_seq

    def save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"gen-{self.applied_seq:012d}-{time.time_ns()}"
        staging = self.dir / f".{name}.tmp"
        self.embeddings.save(str(staging))
        (staging / APPLIED).write_text(
            json.dumps({"seq": self.applied_seq, "count": self.count(), "engine": self.engine})
        )
        for file in staging.iterdir():
            with file.open("rb") as handle:
                os.fsync(handle.fileno())
        staging.rename(self.dir / name)
        pointer_tmp = self.dir / f".{CURRENT}.tmp"
        pointer_tmp.write_text(name)
        with pointer_tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(pointer_tmp, self.dir / CURRENT)
        _fsync_dir(self.dir)
        self.saved_seq, self.saved_at = self.applied_seq, time.monotonic()
        for old in self.dir.iterdir():
            if old.name not in (name, CURRENT) and (old.name.startswith(("gen-", ".gen-"))):
                shutil.rmtree(old, ignore_errors=True)

    @property
    def dirty(self) -> bool:
        return self.applied_seq != self.saved_seq

    def looks_intact(self) -> bool:
        """A cheap check without loading: the live generation's files are there and plausibly sized."""
        pointer = self.dir / CURRENT
        if not pointer.exists():
            return not self.dir.exists() or not any(self.dir.glob("gen-*"))
        try:
            generation = self.dir / pointer.read_text().strip()
            applied = json.loads((generation / APPLIED).read_text())
            config = json.loads((generation / "config.json").read_text())
            vectors = generation / "embeddings"
            need = int(applied["count"]) * int(config.get("dimensions") or 1) * 4
            return (generation / "ids").exists() and vectors.exists() and vectors.stat().st_size >= need
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def saved_engine(self) -> str | None:
        """The encoder the saved generation was built with (None if there is none or it is unreadable)."""
        try:
            generation = self.dir / (self.dir / CURRENT).read_text().strip()
            return str(json.loads((generation / APPLIED).read_text()).get("engine", LEGACY_ENGINE))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def saved_applied_seq(self) -> int:
        """The store sequence of the saved generation (0 if none or unreadable)."""
        try:
            generation = self.dir / (self.dir / CURRENT).read_text().strip()
            return int(json.loads((generation / APPLIED).read_text())["seq"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def quarantine(self, root: Path) -> Path | None:
        """Move a damaged index aside (kept for inspection), so it is rebuilt, not overwritten."""
        if not self.dir.exists():
            return None
        target = root / "quarantine" / f"{self.dir.name}-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**6}"
        target.parent.mkdir(parents=True, exist_ok=True)
        self.dir.rename(target)
        self.embeddings, self.applied_seq = self._new(), 0
        return target

    # --- content ----------------------------------------------------------------------------------

    def count(self) -> int:
        return int(self.embeddings.count()) if self.embeddings is not None else 0

    def apply(self, upserts: list[tuple[str, str]], deletes: list[str], seq: int) -> None:
        if deletes:
            self.embeddings.delete(deletes)
        if upserts:
            self.embeddings.upsert([(doc_id, text, None) for doc_id, text in upserts])
        self.applied_seq = max(self.applied_seq, seq)

    def search(self, query: str, limit: int) -> list[tuple[str, float]]:
        if limit <= 0 or self.count() == 0:
            return []
        return [(str(doc_id), float(score)) for doc_id, score in self.embeddings.search(query, limit)]
