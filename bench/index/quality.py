"""Retrieval quality of an encoder on the labelled set in tests/data/retrieval_set.json.

Shared by the quality gate test (tests/test_encoder_quality.py) and the index benchmark, so the
gate and the table measure the same thing: recall@10 against the hand-labelled relevant
documents, and the overlap of each query's top 10 with a reference encoder's top 10.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RETRIEVAL_SET = Path(__file__).resolve().parents[2] / "tests" / "data" / "retrieval_set.json"
K = 10
TARGET_RECALL_RATIO = 0.98  # fast encoder's recall@10 >= 0.98 x the fp32 encoder's
TARGET_OVERLAP = 0.90  # mean top-10 overlap with the fp32 encoder's results


@dataclass(frozen=True)
class Retrieval:
    recall: float  # mean over queries of |relevant in top K| / min(|relevant|, K)
    top: list[list[str]]  # each query's top K document ids


def load_set(path: Path = RETRIEVAL_SET) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def evaluate(new_embeddings: Callable[..., Any], data: dict[str, Any] | None = None) -> Retrieval:
    """Index the set's documents in a fresh txtai instance (from `txtai_factory`) and run its queries."""
    data = data or load_set()
    embeddings = new_embeddings()
    embeddings.index([(d["id"], d["text"], None) for d in data["documents"]])
    recalls, top = [], []
    for query in data["queries"]:
        ids = [str(i) for i, _ in embeddings.search(query["query"], K)]
        relevant = set(query["relevant"])
        recalls.append(len(relevant.intersection(ids)) / min(len(relevant), K))
        top.append(ids)
    return Retrieval(sum(recalls) / len(recalls), top)


def overlap(a: Retrieval, b: Retrieval) -> float:
    """Mean share of each query's top K that both encoders return."""
    shares = [len(set(x) & set(y)) / K for x, y in zip(a.top, b.top, strict=True)]
    return sum(shares) / len(shares)
