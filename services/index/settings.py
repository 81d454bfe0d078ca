"""Index service settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from libs.model_registry.settings import ModelRegistrySettings
from libs.runtime.settings import setting

AUDIENCE = "inkwell.index"


class IndexSettings(ModelRegistrySettings):
    host: str = setting("127.0.0.1", "INKWELL_INDEX_HOST", "the address to listen on, e.g. 0.0.0.0")
    port: int = setting(50053, "INKWELL_INDEX_PORT", "a TCP port between 0 and 65535", ge=0, le=65535)
    metrics_port: int | None = setting(
        None,
        "INKWELL_INDEX_METRICS_PORT",
        "a TCP port for Prometheus /metrics (unset: no metrics listener)",
        ge=1,
        le=65535,
    )
    auth_address: str = setting(
        "127.0.0.1:50051", "INKWELL_AUTH_ADDR", "host:port of the auth service (for identity keys)"
    )
    index_dir_override: Path | None = setting(
        None, "INKWELL_INDEX_DIR", "a writable directory for the index (default: INKWELL_DATA_DIR/index)"
    )
    batch_documents: int = setting(256, "INKWELL_INDEX_BATCH", "documents per indexing batch, 1 to 4096", ge=1, le=4096)
    max_open_indexes: int = setting(
        256, "INKWELL_INDEX_MAX_OPEN", "per-user indexes kept loaded, 1 to 100000", ge=1, le=100_000
    )
    embeddings_engine: Literal["onnx-int8", "torch-fp32"] | None = setting(
        None,
        "INKWELL_EMBEDDINGS_ENGINE",
        "onnx-int8 (int8 ONNX Runtime, exported once and cached) or torch-fp32 (txtai's default PyTorch); "
        "unset: the model's first engine in libs/config/models.toml",
    )
    encoder_cache: Path | None = setting(
        None,
        "INKWELL_ENCODER_CACHE",
        "a writable directory for exported encoders (default: INKWELL_MODEL_CACHE/inkwell-encoders, "
        "else INKWELL_DATA_DIR/models/inkwell-encoders)",
    )
    max_wait_s: float = setting(
        30.0, "INKWELL_INDEX_MAX_WAIT_S", "the longest a call waits for readiness, 0.1 to 600 s", ge=0.1, le=600
    )

    @property
    def index_dir(self) -> Path:
        return self.index_dir_override or self.data_dir / "index"

    @property
    def encoder_dir(self) -> Path:
        if self.encoder_cache:
            return self.encoder_cache
        return (self.model_cache or self.data_dir / "models") / "inkwell-encoders"
