"""The enums that replaced strings map back to exactly the strings the frontend JSON always had."""

from __future__ import annotations

import pytest

from inkwell.llm.v1 import llm_service_pb2 as llm_pb
from inkwell.models.v1 import models_service_pb2 as models_pb
from libs.runtime.protoenum import from_enum, to_enum


@pytest.mark.parametrize(
    ("enum", "name", "lower"),
    [
        (llm_pb.AttemptOutcome, "invalid_output", True),
        (llm_pb.RequestShape, "json_schema", True),
        (llm_pb.UsageOutcome, "failed", True),
        (llm_pb.ErrorClass, "MODEL_UNAVAILABLE", False),
        (llm_pb.RemoteModelState, "ROUTE_NOT_FOUND", False),
        (models_pb.DownloadState, "NOT_APPLICABLE", False),
        (models_pb.ModelSource, "package", True),
    ],
)
def test_round_trip(enum: object, name: str, lower: bool) -> None:
    value = to_enum(enum, name)  # type: ignore[arg-type]
    assert value != 0 and from_enum(enum, value, lower=lower) == name  # type: ignore[arg-type]


def test_empty_is_unspecified_and_unknown_names_are_refused() -> None:
    assert to_enum(llm_pb.ErrorClass, "") == llm_pb.ERROR_CLASS_UNSPECIFIED
    assert from_enum(llm_pb.ErrorClass, llm_pb.ERROR_CLASS_UNSPECIFIED) == ""
    with pytest.raises(ValueError):
        to_enum(llm_pb.ErrorClass, "NOT_A_CLASS")
