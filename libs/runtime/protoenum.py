"""Map the short names the code uses ("ok", "json_schema", "READY") to proto enum numbers and back.

Enum values follow buf's rule (the enum's UPPER_SNAKE name as a prefix, zero = *_UNSPECIFIED), so
the prefix is read from the enum's own zero value and nobody spells it twice. Unset (0) maps to the
empty string, which is how callers and the frontend JSON said "none" before the enums existed.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper


def _prefix(enum: EnumTypeWrapper) -> str:
    zero: str = enum.DESCRIPTOR.values_by_number[0].name
    return zero.removesuffix("UNSPECIFIED")


def to_enum(enum: EnumTypeWrapper, name: str) -> Any:
    """'json_schema' -> REQUEST_SHAPE_JSON_SCHEMA; '' -> 0. ValueError for a name the enum lacks."""
    if not name:
        return 0
    return enum.Value(_prefix(enum) + name.upper())


def from_enum(enum: EnumTypeWrapper, value: int, *, lower: bool = False) -> str:
    """REQUEST_SHAPE_JSON_SCHEMA -> 'JSON_SCHEMA' ('json_schema' with lower=True); 0 -> ''."""
    if not value:
        return ""
    short = enum.Name(value).removeprefix(_prefix(enum))
    return short.lower() if lower else short
