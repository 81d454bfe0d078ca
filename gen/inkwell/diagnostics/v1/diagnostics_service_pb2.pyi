import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CheckStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHECK_STATUS_UNSPECIFIED: _ClassVar[CheckStatus]
    CHECK_STATUS_PASS: _ClassVar[CheckStatus]
    CHECK_STATUS_WARN: _ClassVar[CheckStatus]
    CHECK_STATUS_FAIL: _ClassVar[CheckStatus]

class ReasonClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REASON_CLASS_UNSPECIFIED: _ClassVar[ReasonClass]
    REASON_CLASS_CONFIG: _ClassVar[ReasonClass]
    REASON_CLASS_UPSTREAM: _ClassVar[ReasonClass]
    REASON_CLASS_CLIENT: _ClassVar[ReasonClass]
    REASON_CLASS_DEFECT: _ClassVar[ReasonClass]
CHECK_STATUS_UNSPECIFIED: CheckStatus
CHECK_STATUS_PASS: CheckStatus
CHECK_STATUS_WARN: CheckStatus
CHECK_STATUS_FAIL: CheckStatus
REASON_CLASS_UNSPECIFIED: ReasonClass
REASON_CLASS_CONFIG: ReasonClass
REASON_CLASS_UPSTREAM: ReasonClass
REASON_CLASS_CLIENT: ReasonClass
REASON_CLASS_DEFECT: ReasonClass

class DiagnoseRequest(_message.Message):
    __slots__ = ("log_window",)
    LOG_WINDOW_FIELD_NUMBER: _ClassVar[int]
    log_window: _duration_pb2.Duration
    def __init__(self, log_window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Finding(_message.Message):
    __slots__ = ("area", "name", "status", "reason", "reason_class", "cause", "fix")
    AREA_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REASON_CLASS_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    FIX_FIELD_NUMBER: _ClassVar[int]
    area: str
    name: str
    status: CheckStatus
    reason: str
    reason_class: ReasonClass
    cause: str
    fix: str
    def __init__(self, area: _Optional[str] = ..., name: _Optional[str] = ..., status: _Optional[_Union[CheckStatus, str]] = ..., reason: _Optional[str] = ..., reason_class: _Optional[_Union[ReasonClass, str]] = ..., cause: _Optional[str] = ..., fix: _Optional[str] = ...) -> None: ...

class DiagnoseResponse(_message.Message):
    __slots__ = ("service", "instance", "now", "findings", "recent_log_lines", "log_lines_truncated")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    NOW_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    RECENT_LOG_LINES_FIELD_NUMBER: _ClassVar[int]
    LOG_LINES_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    service: str
    instance: str
    now: _timestamp_pb2.Timestamp
    findings: _containers.RepeatedCompositeFieldContainer[Finding]
    recent_log_lines: _containers.RepeatedScalarFieldContainer[str]
    log_lines_truncated: bool
    def __init__(self, service: _Optional[str] = ..., instance: _Optional[str] = ..., now: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., findings: _Optional[_Iterable[_Union[Finding, _Mapping]]] = ..., recent_log_lines: _Optional[_Iterable[str]] = ..., log_lines_truncated: _Optional[bool] = ...) -> None: ...
