"""The index engine: every txtai call runs on one owning worker thread.

txtai is not safe for concurrent use (unlocked searches overlapping writes crashed the process,
research/index.md), so one thread owns every Embeddings instance. Each user has their own
instance (hard isolation, exact top-k) and all of them share one loaded embeddings model.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from services.index.store import IndexStore, StoredDocument
from services.index.user_index import IndexDamaged, UserIndex

log = logging.getLogger("inkwell.index.engine")

T = TypeVar("T")


@dataclass(frozen=True)
class Hit:
    id: str
    text: str
    score: float
    metadata: dict[str, str]


ENGINES = ("onnx-int8", "torch-fp32")
DEFAULT_ENGINE = "onnx-int8"


def choose_engine(listed: tuple[str, ...], wanted: str | None) -> str:
    """The engine to encode with: `wanted` (INKWELL_EMBEDDINGS_ENGINE) if the registry lists it for
    the model, else the registry's first; txtai's default when the registry lists none."""
    if wanted is None:
        return listed[0] if listed else "torch-fp32"
    if listed and wanted not in listed:
        raise ValueError(
            f"INKWELL_EMBEDDINGS_ENGINE={wanted} is not an engine of this model in the registry "
            f"({', '.join(listed)}). Fix: use one of them, or list it under engines in libs/config/models.toml"
        )
    return wanted


def encoder_config(
    model_path: Path, engine: str = DEFAULT_ENGINE, *, cache: Path | None = None, threads: int | None = None
) -> dict[str, Any]:
    """txtai vectors settings for the embeddings model on the chosen engine.

    `torch-fp32` is txtai's default (transformers, fp32 PyTorch). `onnx-int8` encodes the same
    model exported once to ONNX with int8 weights (libs/model_registry/onnx_encoder.py, cached
    under `cache`), mean-pooled and normalised by txtai like the default, truncated at the
    model's own max_seq_length: several times faster, retrieval quality kept (bench/index)."""
    if engine == "torch-fp32":  # explicit keys: a saved index's own settings must not linger on load
        return {"path": str(model_path), "method": "transformers", "maxlength": None, "threads": None}
    if engine != "onnx-int8":
        raise ValueError(f"unknown embeddings engine {engine!r}: expected one of {', '.join(ENGINES)}")
    from libs.model_registry.onnx_encoder import int8_encoder

    onnx_model = int8_encoder(model_path, cache or model_path.parent / ".inkwell-encoders")
    config: dict[str, Any] = {"path": str(onnx_model), "method": "services.index.onnx_vectors.ThreadedOnnx"}
    st_config = model_path / "sentence_bert_config.json"
    if st_config.exists():
        config["maxlength"] = int(json.loads(st_config.read_text())["max_seq_length"])
    if threads:
        config["threads"] = threads
    return config


def txtai_factory(model_path: Path, vectors: dict[str, Any] | None = None) -> Callable[..., Any]:
    """A function that makes Embeddings instances sharing one loaded model (txtai's `models=` cache).

    `vectors` (from `encoder_config`) picks the engine; txtai's default fp32 PyTorch without it."""
    from txtai import Embeddings

    from libs.model_registry.loaders import quiet_transformers

    quiet_transformers()
    shared: dict[str, Any] = {}
    vectors = vectors or {"path": str(model_path)}
    config = {**vectors, "content": False, "backend": "faiss", "faiss": {"components": "IDMap,Flat"}}
    Embeddings(dict(config), models=shared).transform("warm up")  # loads the model once, into `shared`

    def new(load: Path | None = None) -> Any:
        if load is None:
            return Embeddings(dict(config), models=shared)
        embeddings = Embeddings(models=shared)
        # The saved index names the engine it was built with; encode with today's engine.
        embeddings.load(str(load), config=dict(vectors))
        return embeddings

    return new


class IndexEngine:
    def __init__(
        self,
        root: Path,
        store: IndexStore,
        new_embeddings: Callable[..., Any],
        *,
        max_open: int = 256,
        on_rebuild: Callable[[bool, str], None] | None = None,
        save_every_s: float = 2.0,
        engine: str = DEFAULT_ENGINE,
    ) -> None:
        self.save_every_s = save_every_s
        self.engine = engine
        self.root = root
        self.store = store
        self._new = new_embeddings
        self.max_open = max_open
        self._open: OrderedDict[str, UserIndex] = OrderedDict()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="txtai")
        self._on_rebuild = on_rebuild or (lambda active, user: None)
        self._scratch: Any = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # --- on the worker thread ----------------------------------------------------------------

    def index_for(self, user_id: str) -> UserIndex:
        """The user's index, loaded (or rebuilt if damaged) and caught up with the store."""
        index = self._open.get(user_id)
        if index is None:
            index = UserIndex(self.root, user_id, self._new, self.engine)
            try:
                index.load()
            except IndexDamaged as damage:
                self._rebuild(index, str(damage))
            self._open[user_id] = index
            while len(self._open) > self.max_open:
                _, evicted = self._open.popitem(last=False)
                if evicted.dirty:
                    evicted.save()
        else:
            self._open.move_to_end(user_id)
        self.sync(index)
        return index

    def _rebuild(self, index: UserIndex, why: str) -> None:
        moved = index.quarantine(self.root)
        log.error(
            "damaged index moved aside; rebuilding it from the stored documents",
            extra={"reason": "INDEX_DAMAGED", "user_key": index.dir.name, "moved_to": str(moved), "error": why},
        )
        self._on_rebuild(True, index.dir.name)
        try:
            self.sync(index, force_save=True)
        finally:
            self._on_rebuild(False, index.dir.name)
        log.info("index rebuilt", extra={"user_key": index.dir.name, "documents": index.count()})

    def sync(self, index: UserIndex, force_save: bool = False) -> int:
        """Apply every stored change newer than the index. Returns changes applied.

        Saving writes the whole index, so it is throttled (every `save_every_s`, or when forced):
        the store is the source of truth and a crash before a save is replayed from it."""
        changes: list[StoredDocument] = self.store.changes_since(index.user_id, index.applied_seq)
        if changes:
            upserts = [(c.doc_id, c.text) for c in changes if not c.deleted]
            deletes = [c.doc_id for c in changes if c.deleted]
            index.apply(upserts, deletes, max(c.seq for c in changes))
        if force_save or (index.dirty and time.monotonic() - index.saved_at >= self.save_every_s):
            index.save()
        return len(changes)

    def save_dirty(self) -> int:
        """Save every loaded index with unsaved changes (idle time, shutdown)."""
        saved = 0
        for index in list(self._open.values()):
            if index.dirty:
                index.save()
                saved += 1
        return saved

    def check_all(self) -> None:
        """At startup: rebuild what looks damaged, catch up what is behind, without loading the rest."""
        for user_id in self.store.users():
            index = UserIndex(self.root, user_id, self._new, self.engine)
            stale = index.saved_engine() not in (None, self.engine)
            if stale or not index.looks_intact() or index.saved_applied_seq() < self.store.max_seq(user_id):
                try:
                    self.index_for(user_id)
                except Exception:
                    log.exception(
                        "could not check a user's index; it is retried on next use",
                        extra={"reason": "INDEX_SYNC_FAILED"},
                    )

    def sync_users(self, user_ids: set[str]) -> None:
        for user_id in user_ids:
            try:
                self.index_for(user_id)
            except Exception:
                log.exception(
                    "could not bring a user's index up to date; it is retried on next use",
                    extra={"reason": "INDEX_SYNC_FAILED"},
                )
                self._open.pop(user_id, None)

    def search(self, user_id: str, query: str, limit: int, filters: dict[str, str]) -> list[Hit]:
        index = self.index_for(user_id)
        total = index.count()
        wanted = limit if not filters else max(limit * 4, 50)
        while True:
            candidates = index.search(query, min(total, wanted))
            documents = self.store.documents(user_id, [doc_id for doc_id, _ in candidates])
            hits = []
            for doc_id, score in candidates:
                document = documents.get(doc_id)
                if document is None:
                    continue
                if all(document.metadata.get(k) == v for k, v in filters.items()):
                    hits.append(Hit(doc_id, document.text, score, document.metadata))
            if len(hits) >= limit or wanted >= total:
                return hits[:limit]
            wanted *= 4

    def similarity(self, query: str, texts: list[str]) -> list[float]:
        if self._scratch is None:
            self._scratch = self._new()
        scores = [0.0] * len(texts)
        for position, score in self._scratch.similarity(query, texts):
            scores[int(position)] = float(score)
        return scores
