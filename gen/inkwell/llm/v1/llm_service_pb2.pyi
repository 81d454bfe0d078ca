import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from inkwell.models.v1 import models_service_pb2 as _models_service_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_SYSTEM: _ClassVar[Role]
    ROLE_USER: _ClassVar[Role]
    ROLE_ASSISTANT: _ClassVar[Role]

class Criticality(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CRITICALITY_UNSPECIFIED: _ClassVar[Criticality]
    CRITICALITY_CRITICAL: _ClassVar[Criticality]
    CRITICALITY_BEST_EFFORT: _ClassVar[Criticality]

class OutputStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTPUT_STAGE_UNSPECIFIED: _ClassVar[OutputStage]
    OUTPUT_STAGE_NATIVE_SCHEMA: _ClassVar[OutputStage]
    OUTPUT_STAGE_JSON_OBJECT: _ClassVar[OutputStage]
    OUTPUT_STAGE_PROMPTED: _ClassVar[OutputStage]
    OUTPUT_STAGE_REPAIRED: _ClassVar[OutputStage]
    OUTPUT_STAGE_REASKED: _ClassVar[OutputStage]
    OUTPUT_STAGE_TEXT: _ClassVar[OutputStage]
    OUTPUT_STAGE_CONSTRAINED: _ClassVar[OutputStage]

class AttemptOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ATTEMPT_OUTCOME_UNSPECIFIED: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_OK: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_SKIPPED: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_ERROR: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_INVALID_OUTPUT: _ClassVar[AttemptOutcome]

class ErrorClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_CLASS_UNSPECIFIED: _ClassVar[ErrorClass]
    ERROR_CLASS_TRANSIENT: _ClassVar[ErrorClass]
    ERROR_CLASS_MODEL_UNAVAILABLE: _ClassVar[ErrorClass]
    ERROR_CLASS_ROUTE_NOT_FOUND: _ClassVar[ErrorClass]
    ERROR_CLASS_CAPABILITY: _ClassVar[ErrorClass]
    ERROR_CLASS_CREDENTIALS: _ClassVar[ErrorClass]
    ERROR_CLASS_BAD_REQUEST: _ClassVar[ErrorClass]
    ERROR_CLASS_OUTPUT: _ClassVar[ErrorClass]
    ERROR_CLASS_DEADLINE: _ClassVar[ErrorClass]
    ERROR_CLASS_NOT_CONFIGURED: _ClassVar[ErrorClass]
    ERROR_CLASS_NO_LOCAL_MODEL: _ClassVar[ErrorClass]
    ERROR_CLASS_UNREACHABLE: _ClassVar[ErrorClass]

class RequestShape(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REQUEST_SHAPE_UNSPECIFIED: _ClassVar[RequestShape]
    REQUEST_SHAPE_JSON_SCHEMA: _ClassVar[RequestShape]
    REQUEST_SHAPE_JSON_OBJECT: _ClassVar[RequestShape]
    REQUEST_SHAPE_PROMPTED: _ClassVar[RequestShape]
    REQUEST_SHAPE_TEXT: _ClassVar[RequestShape]
    REQUEST_SHAPE_REASK: _ClassVar[RequestShape]
    REQUEST_SHAPE_CONSTRAINED: _ClassVar[RequestShape]

class RemoteModelState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REMOTE_MODEL_STATE_UNSPECIFIED: _ClassVar[RemoteModelState]
    REMOTE_MODEL_STATE_AVAILABLE: _ClassVar[RemoteModelState]
    REMOTE_MODEL_STATE_MODEL_UNAVAILABLE: _ClassVar[RemoteModelState]
    REMOTE_MODEL_STATE_ROUTE_NOT_FOUND: _ClassVar[RemoteModelState]
    REMOTE_MODEL_STATE_CREDENTIALS: _ClassVar[RemoteModelState]
    REMOTE_MODEL_STATE_NOT_CONFIGURED: _ClassVar[RemoteModelState]
    REMOTE_MODEL_STATE_UNREACHABLE: _ClassVar[RemoteModelState]
    REMOTE_MODEL_STATE_UNKNOWN: _ClassVar[RemoteModelState]

class UsageOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    USAGE_OUTCOME_UNSPECIFIED: _ClassVar[UsageOutcome]
    USAGE_OUTCOME_OK: _ClassVar[UsageOutcome]
    USAGE_OUTCOME_FAILED: _ClassVar[UsageOutcome]
ROLE_UNSPECIFIED: Role
ROLE_SYSTEM: Role
ROLE_USER: Role
ROLE_ASSISTANT: Role
CRITICALITY_UNSPECIFIED: Criticality
CRITICALITY_CRITICAL: Criticality
CRITICALITY_BEST_EFFORT: Criticality
OUTPUT_STAGE_UNSPECIFIED: OutputStage
OUTPUT_STAGE_NATIVE_SCHEMA: OutputStage
OUTPUT_STAGE_JSON_OBJECT: OutputStage
OUTPUT_STAGE_PROMPTED: OutputStage
OUTPUT_STAGE_REPAIRED: OutputStage
OUTPUT_STAGE_REASKED: OutputStage
OUTPUT_STAGE_TEXT: OutputStage
OUTPUT_STAGE_CONSTRAINED: OutputStage
ATTEMPT_OUTCOME_UNSPECIFIED: AttemptOutcome
ATTEMPT_OUTCOME_OK: AttemptOutcome
ATTEMPT_OUTCOME_SKIPPED: AttemptOutcome
ATTEMPT_OUTCOME_ERROR: AttemptOutcome
ATTEMPT_OUTCOME_INVALID_OUTPUT: AttemptOutcome
ERROR_CLASS_UNSPECIFIED: ErrorClass
ERROR_CLASS_TRANSIENT: ErrorClass
ERROR_CLASS_MODEL_UNAVAILABLE: ErrorClass
ERROR_CLASS_ROUTE_NOT_FOUND: ErrorClass
ERROR_CLASS_CAPABILITY: ErrorClass
ERROR_CLASS_CREDENTIALS: ErrorClass
ERROR_CLASS_BAD_REQUEST: ErrorClass
ERROR_CLASS_OUTPUT: ErrorClass
ERROR_CLASS_DEADLINE: ErrorClass
ERROR_CLASS_NOT_CONFIGURED: ErrorClass
ERROR_CLASS_NO_LOCAL_MODEL: ErrorClass
ERROR_CLASS_UNREACHABLE: ErrorClass
REQUEST_SHAPE_UNSPECIFIED: RequestShape
REQUEST_SHAPE_JSON_SCHEMA: RequestShape
REQUEST_SHAPE_JSON_OBJECT: RequestShape
REQUEST_SHAPE_PROMPTED: RequestShape
REQUEST_SHAPE_TEXT: RequestShape
REQUEST_SHAPE_REASK: RequestShape
REQUEST_SHAPE_CONSTRAINED: RequestShape
REMOTE_MODEL_STATE_UNSPECIFIED: RemoteModelState
REMOTE_MODEL_STATE_AVAILABLE: RemoteModelState
REMOTE_MODEL_STATE_MODEL_UNAVAILABLE: RemoteModelState
REMOTE_MODEL_STATE_ROUTE_NOT_FOUND: RemoteModelState
REMOTE_MODEL_STATE_CREDENTIALS: RemoteModelState
REMOTE_MODEL_STATE_NOT_CONFIGURED: RemoteModelState
REMOTE_MODEL_STATE_UNREACHABLE: RemoteModelState
REMOTE_MODEL_STATE_UNKNOWN: RemoteModelState
USAGE_OUTCOME_UNSPECIFIED: UsageOutcome
USAGE_OUTCOME_OK: UsageOutcome
USAGE_OUTCOME_FAILED: UsageOutcome

class Message(_message.Message):
    __slots__ = ("role", "content")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    role: Role
    content: str
    def __init__(self, role: _Optional[_Union[Role, str]] = ..., content: _Optional[str] = ...) -> None: ...

class Attempt(_message.Message):
    __slots__ = ("provider", "model", "route", "outcome", "error_class", "http_status", "latency", "detail", "shape")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ERROR_CLASS_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    provider: str
    model: str
    route: str
    outcome: AttemptOutcome
    error_class: ErrorClass
    http_status: int
    latency: _duration_pb2.Duration
    detail: str
    shape: RequestShape
    def __init__(self, provider: _Optional[str] = ..., model: _Optional[str] = ..., route: _Optional[str] = ..., outcome: _Optional[_Union[AttemptOutcome, str]] = ..., error_class: _Optional[_Union[ErrorClass, str]] = ..., http_status: _Optional[int] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., detail: _Optional[str] = ..., shape: _Optional[_Union[RequestShape, str]] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens", "total_tokens")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ...) -> None: ...

class Provenance(_message.Message):
    __slots__ = ("provider", "requested_model", "served_model", "served_by", "route", "output_stage", "attempts", "purpose")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_MODEL_FIELD_NUMBER: _ClassVar[int]
    SERVED_MODEL_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_STAGE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    provider: str
    requested_model: str
    served_model: str
    served_by: str
    route: str
    output_stage: OutputStage
    attempts: _containers.RepeatedCompositeFieldContainer[Attempt]
    purpose: str
    def __init__(self, provider: _Optional[str] = ..., requested_model: _Optional[str] = ..., served_model: _Optional[str] = ..., served_by: _Optional[str] = ..., route: _Optional[str] = ..., output_stage: _Optional[_Union[OutputStage, str]] = ..., attempts: _Optional[_Iterable[_Union[Attempt, _Mapping]]] = ..., purpose: _Optional[str] = ...) -> None: ...

class GenerateStructuredRequest(_message.Message):
    __slots__ = ("messages", "json_schema", "purpose", "max_tokens", "temperature", "criticality", "api_key")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    CRITICALITY_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    json_schema: str
    purpose: str
    max_tokens: int
    temperature: float
    criticality: Criticality
    api_key: str
    def __init__(self, messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., json_schema: _Optional[str] = ..., purpose: _Optional[str] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., criticality: _Optional[_Union[Criticality, str]] = ..., api_key: _Optional[str] = ...) -> None: ...

class GenerateStructuredResponse(_message.Message):
    __slots__ = ("json", "provenance", "usage", "degraded", "degraded_reasons")
    JSON_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_REASONS_FIELD_NUMBER: _ClassVar[int]
    json: str
    provenance: Provenance
    usage: Usage
    degraded: bool
    degraded_reasons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, json: _Optional[str] = ..., provenance: _Optional[_Union[Provenance, _Mapping]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., degraded: _Optional[bool] = ..., degraded_reasons: _Optional[_Iterable[str]] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("messages", "purpose", "max_tokens", "temperature", "criticality", "api_key")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    CRITICALITY_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    purpose: str
    max_tokens: int
    temperature: float
    criticality: Criticality
    api_key: str
    def __init__(self, messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., purpose: _Optional[str] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., criticality: _Optional[_Union[Criticality, str]] = ..., api_key: _Optional[str] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("text", "provenance", "usage", "degraded", "degraded_reasons")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_REASONS_FIELD_NUMBER: _ClassVar[int]
    text: str
    provenance: Provenance
    usage: Usage
    degraded: bool
    degraded_reasons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, text: _Optional[str] = ..., provenance: _Optional[_Union[Provenance, _Mapping]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., degraded: _Optional[bool] = ..., degraded_reasons: _Optional[_Iterable[str]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RemoteModelStatus(_message.Message):
    __slots__ = ("name", "provider", "model", "route", "state", "detail", "supports_structured_output")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SUPPORTS_STRUCTURED_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    name: str
    provider: str
    model: str
    route: str
    state: RemoteModelState
    detail: str
    supports_structured_output: bool
    def __init__(self, name: _Optional[str] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., route: _Optional[str] = ..., state: _Optional[_Union[RemoteModelState, str]] = ..., detail: _Optional[str] = ..., supports_structured_output: _Optional[bool] = ...) -> None: ...

class LocalModelStatus(_message.Message):
    __slots__ = ("name", "roles", "download_state", "load_state", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_STATE_FIELD_NUMBER: _ClassVar[int]
    LOAD_STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    download_state: _models_service_pb2.DownloadState
    load_state: _models_service_pb2.LoadState
    reason: str
    def __init__(self, name: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., download_state: _Optional[_Union[_models_service_pb2.DownloadState, str]] = ..., load_state: _Optional[_Union[_models_service_pb2.LoadState, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("remote", "local")
    REMOTE_FIELD_NUMBER: _ClassVar[int]
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    remote: _containers.RepeatedCompositeFieldContainer[RemoteModelStatus]
    local: _containers.RepeatedCompositeFieldContainer[LocalModelStatus]
    def __init__(self, remote: _Optional[_Iterable[_Union[RemoteModelStatus, _Mapping]]] = ..., local: _Optional[_Iterable[_Union[LocalModelStatus, _Mapping]]] = ...) -> None: ...

class GetUsageRequest(_message.Message):
    __slots__ = ("since", "until")
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    def __init__(self, since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UsageRow(_message.Message):
    __slots__ = ("day", "provider", "model", "outcome", "calls", "prompt_tokens", "completion_tokens")
    DAY_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    day: str
    provider: str
    model: str
    outcome: UsageOutcome
    calls: int
    prompt_tokens: int
    completion_tokens: int
    def __init__(self, day: _Optional[str] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., outcome: _Optional[_Union[UsageOutcome, str]] = ..., calls: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ...) -> None: ...

class GetUsageResponse(_message.Message):
    __slots__ = ("rows",)
    ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[UsageRow]
    def __init__(self, rows: _Optional[_Iterable[_Union[UsageRow, _Mapping]]] = ...) -> None: ...
