"""Encoder race: txtai's default (fp32 PyTorch) against the int8 ONNX Runtime engine, in-process.

Both engines run the same model (the packaged all-MiniLM-L6-v2) through the service's own
`encoder_config` / `txtai_factory`, on one thread each (torch.set_num_threads(1), ONNX Runtime
intra-op threads = 1). The machine is shared, so the work is split into rounds and every round
runs both engines back to back in alternating order; ratios are medians of per-round ratios.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.index.quality import Retrieval, evaluate, load_set, overlap

ENGINES = ("torch-fp32", "onnx-int8")
TARGET_ENCODE_RATIO = 2.0  # onnx-int8 encode docs/s >= 2 x txtai's default


@dataclass(frozen=True)
class EncoderProfile:
    rounds: int  # alternating rounds; each encodes and indexes one batch per engine
    batch: int  # documents per round
    queries: int  # measured searches per engine (alternating), plus a few warm-up ones


def _median_ratio(fast: Sequence[float], slow: Sequence[float]) -> float:
    return statistics.median(f / s for f, s in zip(fast, slow, strict=True))


def race(
    model_path: Path, cache: Path, docs: Sequence[tuple[str, str]], queries: Sequence[str], prof: EncoderProfile
) -> dict[str, Any]:
    from services.index.engine import encoder_config, txtai_factory

    out: dict[str, Any] = {"threads": 1}
    t0 = time.perf_counter()
    configs = {engine: encoder_config(model_path, engine, cache=cache, threads=1) for engine in ENGINES}
    out["export_s"] = time.perf_counter() - t0  # ~0 when the export is already cached
    factories, out["load_s"] = {}, {}
    for engine in ENGINES:
        t0 = time.perf_counter()
        factories[engine] = txtai_factory(model_path, configs[engine])
        out["load_s"][engine] = time.perf_counter() - t0
    indexes = {engine: factories[engine]() for engine in ENGINES}

    encode: dict[str, list[float]] = {e: [] for e in ENGINES}
    index: dict[str, list[float]] = {e: [] for e in ENGINES}
    gc.collect()
    for r in range(prof.rounds):
        chunk = docs[r * prof.batch : (r + 1) * prof.batch]
        texts = [t for _, t in chunk]
        order = ENGINES if r % 2 == 0 else ENGINES[::-1]
        for engine in order:
            t0 = time.perf_counter()
            indexes[engine].batchtransform(texts)
            encode[engine].append(len(texts) / (time.perf_counter() - t0))
        for engine in order[::-1]:
            t0 = time.perf_counter()
            indexes[engine].upsert([(d, t, None) for d, t in chunk])
            index[engine].append(len(chunk) / (time.perf_counter() - t0))
    out["encode_dps"] = {e: statistics.median(v) for e, v in encode.items()}
    out["encode_ratio"] = _median_ratio(encode["onnx-int8"], encode["torch-fp32"])
    out["index_dps"] = {e: statistics.median(v) for e, v in index.items()}
    out["index_ratio"] = _median_ratio(index["onnx-int8"], index["torch-fp32"])
    out["indexed"] = indexes["onnx-int8"].count()

    warmup = 5
    latency: dict[str, list[float]] = {e: [] for e in ENGINES}
    same = 0
    for i, query in enumerate(queries[: warmup + prof.queries]):
        order = ENGINES if i % 2 == 0 else ENGINES[::-1]
        ids = {}
        for engine in order:
            t0 = time.perf_counter()
            ids[engine] = [str(x) for x, _ in indexes[engine].search(query, 10)]
            if i >= warmup:
                latency[engine].append(time.perf_counter() - t0)
        if i >= warmup:
            same += len(set(ids["torch-fp32"]) & set(ids["onnx-int8"]))
    out["search_p50"] = {e: statistics.median(v) for e, v in latency.items()}
    out["search_ratio"] = statistics.median(
        f / s for f, s in zip(latency["torch-fp32"], latency["onnx-int8"], strict=True)
    )
    out["search_overlap"] = same / (10 * len(latency["onnx-int8"]))
    out["queries"] = len(latency["onnx-int8"])

    data = load_set()
    quality: dict[str, Retrieval] = {e: evaluate(factories[e], data) for e in ENGINES}
    out["recall"] = {e: q.recall for e, q in quality.items()}
    out["set_overlap"] = overlap(quality["onnx-int8"], quality["torch-fp32"])
    out["set_size"] = (len(data["queries"]), len(data["documents"]))
    return out
