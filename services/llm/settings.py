"""LLM service settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator

from libs.model_registry.settings import ModelRegistrySettings
from libs.runtime.settings import setting

AUDIENCE = "inkwell.llm"


class LlmSettings(ModelRegistrySettings):
    host: str = setting("127.0.0.1", "INKWELL_LLM_HOST", "the address to listen on, e.g. 0.0.0.0")
    port: int = setting(50052, "INKWELL_LLM_PORT", "a TCP port between 0 and 65535", ge=0, le=65535)
    metrics_port: int | None = setting(
        None,
        "INKWELL_LLM_METRICS_PORT",
        "a TCP port for Prometheus /metrics (unset: no metrics listener)",
        ge=1,
        le=65535,
    )
    auth_address: str = setting("127.0.0.1:50051", "INKWELL_AUTH_ADDR", "host:port of the auth service")
    hf_base_url: str = setting(
        "", "INKWELL_HF_BASE_URL", "the Hugging Face router's OpenAI-compatible URL, https://router.huggingface.co/v1"
    )
    preflight_interval_s: float = setting(
        300.0, "INKWELL_LLM_PREFLIGHT_S", "seconds between route checks, 10 to 3600", ge=10, le=3600
    )
    unavailable_ttl_s: float = setting(
        300.0, "INKWELL_LLM_UNAVAILABLE_TTL_S", "seconds a model stays marked unavailable, 10 to 3600", ge=10, le=3600
    )
    provider_concurrency: int = setting(
        8, "INKWELL_LLM_CONCURRENCY", "concurrent calls per provider, 1 to 256", ge=1, le=256
    )
    default_timeout_s: float = setting(
        60.0, "INKWELL_LLM_TIMEOUT_S", "the longest one request may take, 1 to 600 s", ge=1, le=600
    )
    preload_local_model: bool = setting(
        True, "INKWELL_LLM_PRELOAD", "true to load the local agent model in the background at startup, false on demand"
    )
    usage_db_override: Path | None = setting(
        None, "INKWELL_LLM_USAGE_DB", "a writable SQLite file path (default: INKWELL_DATA_DIR/llm/usage.sqlite3)"
    )

    @field_validator("hf_base_url")
    @classmethod
    def _check_base(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @property
    def usage_db(self) -> Path:
        return self.usage_db_override or self.data_dir / "llm" / "usage.sqlite3"
