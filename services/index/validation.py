"""Request limits: bad input gets INVALID_ARGUMENT with the field, never a stack trace."""

from __future__ import annotations

import re
from typing import Any

import grpc

from libs.runtime.errors import ServiceError

MAX_DOCUMENTS = 1000
MAX_ID = 256
MAX_TEXT = 100_000
MAX_METADATA = 32
MAX_METADATA_VALUE = 1024
MAX_QUERY = 2000
MAX_LIMIT = 100
MAX_SIMILARITY_TEXTS = 256
METADATA_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")


def invalid(field: str, problem: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_INVALID", f"{field}: {problem}", {"field": field})


def check_metadata(field: str, metadata: dict[str, str]) -> None:
    if len(metadata) > MAX_METADATA:
        raise invalid(field, f"at most {MAX_METADATA} entries")
    for key, value in metadata.items():
        if not METADATA_KEY.match(key):
            raise invalid(f"{field}.{key[:64]}", "keys are letters, digits, '_', '.', '-' (max 64)")
        if len(value) > MAX_METADATA_VALUE:
            raise invalid(f"{field}.{key}", f"values are at most {MAX_METADATA_VALUE} characters")


def documents(items: Any) -> list[dict[str, Any]]:
    if not items:
        raise invalid("documents", "at least one document is required")
    if len(items) > MAX_DOCUMENTS:
        raise invalid("documents", f"at most {MAX_DOCUMENTS} per request")
    seen: set[str] = set()
    out = []
    for position, doc in enumerate(items):
        field = f"documents[{position}]"
        if not doc.id or len(doc.id) > MAX_ID:
            raise invalid(f"{field}.id", f"1 to {MAX_ID} characters")
        if doc.id in seen:
            raise invalid(f"{field}.id", f"duplicate id {doc.id[:64]!r} in this request")
        if not doc.text.strip() or len(doc.text) > MAX_TEXT:
            raise invalid(f"{field}.text", f"non-empty, at most {MAX_TEXT} characters")
        metadata = dict(doc.metadata)
        check_metadata(f"{field}.metadata", metadata)
        seen.add(doc.id)
        out.append({"id": doc.id, "text": doc.text, "metadata": metadata})
    return out


def ids(items: Any) -> list[str]:
    values = list(items)
    if not values:
        raise invalid("ids", "at least one id is required")
    if len(values) > MAX_DOCUMENTS:
        raise invalid("ids", f"at most {MAX_DOCUMENTS} per request")
    for position, value in enumerate(values):
        if not value or len(value) > MAX_ID:
            raise invalid(f"ids[{position}]", f"1 to {MAX_ID} characters")
    return list(dict.fromkeys(values))


def query(value: str) -> str:
    if not value.strip() or len(value) > MAX_QUERY:
        raise invalid("query", f"non-empty, at most {MAX_QUERY} characters")
    return value


def limit(value: int) -> int:
    if value < 0 or value > MAX_LIMIT:
        raise invalid("limit", f"between 1 and {MAX_LIMIT} (0 means 10)")
    return value or 10


def texts(values: Any) -> list[str]:
    items = list(values)
    if not items or len(items) > MAX_SIMILARITY_TEXTS:
        raise invalid("texts", f"1 to {MAX_SIMILARITY_TEXTS} texts")
    for position, text in enumerate(items):
        if len(text) > MAX_TEXT:
            raise invalid(f"texts[{position}]", f"at most {MAX_TEXT} characters")
    return items
