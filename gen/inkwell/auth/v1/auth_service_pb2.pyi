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

class FindingSeverity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FINDING_SEVERITY_UNSPECIFIED: _ClassVar[FindingSeverity]
    FINDING_SEVERITY_INFO: _ClassVar[FindingSeverity]
    FINDING_SEVERITY_WARNING: _ClassVar[FindingSeverity]
    FINDING_SEVERITY_ERROR: _ClassVar[FindingSeverity]

class CheckState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHECK_STATE_UNSPECIFIED: _ClassVar[CheckState]
    CHECK_STATE_RUNNING: _ClassVar[CheckState]
    CHECK_STATE_DONE: _ClassVar[CheckState]

class KeySource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KEY_SOURCE_UNSPECIFIED: _ClassVar[KeySource]
    KEY_SOURCE_PEM: _ClassVar[KeySource]
    KEY_SOURCE_FRONTEND_API: _ClassVar[KeySource]
    KEY_SOURCE_BACKEND_API: _ClassVar[KeySource]
    KEY_SOURCE_DEV_ISSUER: _ClassVar[KeySource]
FINDING_SEVERITY_UNSPECIFIED: FindingSeverity
FINDING_SEVERITY_INFO: FindingSeverity
FINDING_SEVERITY_WARNING: FindingSeverity
FINDING_SEVERITY_ERROR: FindingSeverity
CHECK_STATE_UNSPECIFIED: CheckState
CHECK_STATE_RUNNING: CheckState
CHECK_STATE_DONE: CheckState
KEY_SOURCE_UNSPECIFIED: KeySource
KEY_SOURCE_PEM: KeySource
KEY_SOURCE_FRONTEND_API: KeySource
KEY_SOURCE_BACKEND_API: KeySource
KEY_SOURCE_DEV_ISSUER: KeySource

class MintServiceIdentityRequest(_message.Message):
    __slots__ = ("user_id", "org_id", "audiences", "actor")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIENCES_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    org_id: str
    audiences: _containers.RepeatedScalarFieldContainer[str]
    actor: str
    def __init__(self, user_id: _Optional[str] = ..., org_id: _Optional[str] = ..., audiences: _Optional[_Iterable[str]] = ..., actor: _Optional[str] = ...) -> None: ...

class MintServiceIdentityResponse(_message.Message):
    __slots__ = ("internal_token", "expires_at")
    INTERNAL_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    internal_token: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, internal_token: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class VerifySessionRequest(_message.Message):
    __slots__ = ("token", "origin", "audiences")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    AUDIENCES_FIELD_NUMBER: _ClassVar[int]
    token: str
    origin: str
    audiences: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, token: _Optional[str] = ..., origin: _Optional[str] = ..., audiences: _Optional[_Iterable[str]] = ...) -> None: ...

class Principal(_message.Message):
    __slots__ = ("user_id", "session_id", "org_id", "org_role", "org_slug", "expires_at", "issuer", "development", "authorized_party")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    ORG_ROLE_FIELD_NUMBER: _ClassVar[int]
    ORG_SLUG_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    DEVELOPMENT_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZED_PARTY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    session_id: str
    org_id: str
    org_role: str
    org_slug: str
    expires_at: _timestamp_pb2.Timestamp
    issuer: str
    development: bool
    authorized_party: str
    def __init__(self, user_id: _Optional[str] = ..., session_id: _Optional[str] = ..., org_id: _Optional[str] = ..., org_role: _Optional[str] = ..., org_slug: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., issuer: _Optional[str] = ..., development: _Optional[bool] = ..., authorized_party: _Optional[str] = ...) -> None: ...

class VerifySessionResponse(_message.Message):
    __slots__ = ("principal", "internal_token", "internal_token_expires_at")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_TOKEN_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    principal: Principal
    internal_token: str
    internal_token_expires_at: _timestamp_pb2.Timestamp
    def __init__(self, principal: _Optional[_Union[Principal, _Mapping]] = ..., internal_token: _Optional[str] = ..., internal_token_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetInternalKeysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InternalKey(_message.Message):
    __slots__ = ("key_id", "key_type", "curve", "x", "algorithm")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_TYPE_FIELD_NUMBER: _ClassVar[int]
    CURVE_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    key_type: str
    curve: str
    x: str
    algorithm: str
    def __init__(self, key_id: _Optional[str] = ..., key_type: _Optional[str] = ..., curve: _Optional[str] = ..., x: _Optional[str] = ..., algorithm: _Optional[str] = ...) -> None: ...

class GetInternalKeysResponse(_message.Message):
    __slots__ = ("keys", "issuer", "max_age")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[InternalKey]
    issuer: str
    max_age: _duration_pb2.Duration
    def __init__(self, keys: _Optional[_Iterable[_Union[InternalKey, _Mapping]]] = ..., issuer: _Optional[str] = ..., max_age: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class CheckConfigRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ConfigFinding(_message.Message):
    __slots__ = ("code", "severity", "message", "fix")
    CODE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIX_FIELD_NUMBER: _ClassVar[int]
    code: str
    severity: FindingSeverity
    message: str
    fix: str
    def __init__(self, code: _Optional[str] = ..., severity: _Optional[_Union[FindingSeverity, str]] = ..., message: _Optional[str] = ..., fix: _Optional[str] = ...) -> None: ...

class CheckConfigResponse(_message.Message):
    __slots__ = ("state", "findings", "trusted_issuers", "key_sources")
    STATE_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    TRUSTED_ISSUERS_FIELD_NUMBER: _ClassVar[int]
    KEY_SOURCES_FIELD_NUMBER: _ClassVar[int]
    state: CheckState
    findings: _containers.RepeatedCompositeFieldContainer[ConfigFinding]
    trusted_issuers: _containers.RepeatedScalarFieldContainer[str]
    key_sources: _containers.RepeatedScalarFieldContainer[KeySource]
    def __init__(self, state: _Optional[_Union[CheckState, str]] = ..., findings: _Optional[_Iterable[_Union[ConfigFinding, _Mapping]]] = ..., trusted_issuers: _Optional[_Iterable[str]] = ..., key_sources: _Optional[_Iterable[_Union[KeySource, str]]] = ...) -> None: ...
