import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_KIND_UNSPECIFIED: _ClassVar[ModelKind]
    MODEL_KIND_LOCAL: _ClassVar[ModelKind]
    MODEL_KIND_REMOTE: _ClassVar[ModelKind]

class DownloadState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DOWNLOAD_STATE_UNSPECIFIED: _ClassVar[DownloadState]
    DOWNLOAD_STATE_ABSENT: _ClassVar[DownloadState]
    DOWNLOAD_STATE_QUEUED: _ClassVar[DownloadState]
    DOWNLOAD_STATE_DOWNLOADING: _ClassVar[DownloadState]
    DOWNLOAD_STATE_VERIFYING: _ClassVar[DownloadState]
    DOWNLOAD_STATE_READY: _ClassVar[DownloadState]
    DOWNLOAD_STATE_FAILED: _ClassVar[DownloadState]
    DOWNLOAD_STATE_CANCELLED: _ClassVar[DownloadState]
    DOWNLOAD_STATE_NOT_APPLICABLE: _ClassVar[DownloadState]

class LoadState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOAD_STATE_UNSPECIFIED: _ClassVar[LoadState]
    LOAD_STATE_NOT_LOADED: _ClassVar[LoadState]
    LOAD_STATE_LOADING: _ClassVar[LoadState]
    LOAD_STATE_LOADED: _ClassVar[LoadState]
    LOAD_STATE_OUT_OF_MEMORY: _ClassVar[LoadState]

class ModelSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_SOURCE_UNSPECIFIED: _ClassVar[ModelSource]
    MODEL_SOURCE_PACKAGE: _ClassVar[ModelSource]
    MODEL_SOURCE_CACHE: _ClassVar[ModelSource]
    MODEL_SOURCE_HUB: _ClassVar[ModelSource]
MODEL_KIND_UNSPECIFIED: ModelKind
MODEL_KIND_LOCAL: ModelKind
MODEL_KIND_REMOTE: ModelKind
DOWNLOAD_STATE_UNSPECIFIED: DownloadState
DOWNLOAD_STATE_ABSENT: DownloadState
DOWNLOAD_STATE_QUEUED: DownloadState
DOWNLOAD_STATE_DOWNLOADING: DownloadState
DOWNLOAD_STATE_VERIFYING: DownloadState
DOWNLOAD_STATE_READY: DownloadState
DOWNLOAD_STATE_FAILED: DownloadState
DOWNLOAD_STATE_CANCELLED: DownloadState
DOWNLOAD_STATE_NOT_APPLICABLE: DownloadState
LOAD_STATE_UNSPECIFIED: LoadState
LOAD_STATE_NOT_LOADED: LoadState
LOAD_STATE_LOADING: LoadState
LOAD_STATE_LOADED: LoadState
LOAD_STATE_OUT_OF_MEMORY: LoadState
MODEL_SOURCE_UNSPECIFIED: ModelSource
MODEL_SOURCE_PACKAGE: ModelSource
MODEL_SOURCE_CACHE: ModelSource
MODEL_SOURCE_HUB: ModelSource

class ModelStatus(_message.Message):
    __slots__ = ("name", "kind", "roles", "model_id", "revision", "provider", "task", "dtype", "context_length", "download_state", "reason", "message", "bytes_done", "bytes_total", "source", "ram_estimate_bytes", "fits_in_memory", "load_state", "loaded_at", "last_used_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    BYTES_DONE_FIELD_NUMBER: _ClassVar[int]
    BYTES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    RAM_ESTIMATE_BYTES_FIELD_NUMBER: _ClassVar[int]
    FITS_IN_MEMORY_FIELD_NUMBER: _ClassVar[int]
    LOAD_STATE_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: ModelKind
    roles: _containers.RepeatedScalarFieldContainer[str]
    model_id: str
    revision: str
    provider: str
    task: str
    dtype: str
    context_length: int
    download_state: DownloadState
    reason: str
    message: str
    bytes_done: int
    bytes_total: int
    source: ModelSource
    ram_estimate_bytes: int
    fits_in_memory: bool
    load_state: LoadState
    loaded_at: _timestamp_pb2.Timestamp
    last_used_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[ModelKind, str]] = ..., roles: _Optional[_Iterable[str]] = ..., model_id: _Optional[str] = ..., revision: _Optional[str] = ..., provider: _Optional[str] = ..., task: _Optional[str] = ..., dtype: _Optional[str] = ..., context_length: _Optional[int] = ..., download_state: _Optional[_Union[DownloadState, str]] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., bytes_done: _Optional[int] = ..., bytes_total: _Optional[int] = ..., source: _Optional[_Union[ModelSource, str]] = ..., ram_estimate_bytes: _Optional[int] = ..., fits_in_memory: _Optional[bool] = ..., load_state: _Optional[_Union[LoadState, str]] = ..., loaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_used_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "available_memory_bytes")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelStatus]
    available_memory_bytes: int
    def __init__(self, models: _Optional[_Iterable[_Union[ModelStatus, _Mapping]]] = ..., available_memory_bytes: _Optional[int] = ...) -> None: ...

class PullModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class PullModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: ModelStatus
    def __init__(self, model: _Optional[_Union[ModelStatus, _Mapping]] = ...) -> None: ...

class CancelPullRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CancelPullResponse(_message.Message):
    __slots__ = ("cancelled", "model")
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    cancelled: bool
    model: ModelStatus
    def __init__(self, cancelled: _Optional[bool] = ..., model: _Optional[_Union[ModelStatus, _Mapping]] = ...) -> None: ...
