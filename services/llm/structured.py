"""Structured output: request shapes, parsing with repair, validation with jsonschema."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import json_repair
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError


class Shape(StrEnum):
    JSON_SCHEMA = "json_schema"
    JSON_OBJECT = "json_object"
    PROMPTED = "prompted"


SHAPES = (Shape.JSON_SCHEMA, Shape.JSON_OBJECT, Shape.PROMPTED)
_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


class SchemaInvalid(ValueError):
    """The caller's schema is not a valid JSON Schema."""


class OutputInvalid(ValueError):
    """The model's output is not valid JSON for the schema; `message` quotes the first problem."""


@dataclass(frozen=True)
class Parsed:
    value: Any
    repaired: bool


@functools.lru_cache(maxsize=256)
def compile_schema(schema_text: str) -> tuple[dict[str, Any], Draft202012Validator]:
    """Parse and check a schema once per distinct text (checking against the metaschema costs ~1 ms)."""
    try:
        schema = json.loads(schema_text)
    except json.JSONDecodeError as exc:
        raise SchemaInvalid(f"json_schema is not JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise SchemaInvalid("json_schema must be a JSON object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise SchemaInvalid(f"json_schema is not a valid JSON Schema: {exc.message}") from None
    return schema, Draft202012Validator(schema)


def schema_instruction(schema: dict[str, Any]) -> str:
    return (
        "Reply with one JSON value only (no prose, no code fences) that validates against this JSON Schema:\n"
        + json.dumps(schema, separators=(",", ":"))
    )


def response_format(shape: Shape, schema: dict[str, Any]) -> dict[str, Any] | None:
    if shape is Shape.JSON_SCHEMA:
        return {"type": "json_schema", "json_schema": {"name": "result", "schema": schema, "strict": True}}
    if shape is Shape.JSON_OBJECT:
        return {"type": "json_object"}
    return None


def parse(text: str, validator: Draft202012Validator) -> Parsed:
    """Parse and validate; repair (fences, truncation, quotes) only when plain parsing fails."""
    repaired = False
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        candidate = text or ""
        fenced = _FENCE.match(candidate)
        if fenced:
            candidate = fenced.group(1)
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            value = json_repair.loads(candidate)
            if value in ("", None) or (
                isinstance(value, (dict, list)) and not value and candidate.strip() not in ("{}", "[]")
            ):
                raise OutputInvalid(f"the output is not JSON: {candidate[:120]!r}") from None
        repaired = True
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "(root)"
        raise OutputInvalid(f"at {where}: {first.message}"[:400])
    return Parsed(value, repaired)


def parse_constrained(text: str, validator: Draft202012Validator) -> Any:
    """Grammar-constrained output: plain JSON (raw control characters inside strings are accepted
    and escaped again when re-serialised), validated; never repaired."""
    try:
        value = json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        raise OutputInvalid(f"the output is not complete JSON ({exc.msg} at {exc.pos})") from None
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "(root)"
        raise OutputInvalid(f"at {where}: {first.message}"[:400])
    return value


def reask_message(problem: str) -> dict[str, str]:
    return {
        "role": "user",
        "content": f"Your previous reply was not valid: {problem}. Reply again with only the corrected JSON.",
    }
