"""Settings of the model registry, shared by every service that uses local models."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from libs.model_registry.catalog import DEFAULT_MODELS_FILE
from libs.runtime.settings import BaseServiceSettings, setting


class ModelRegistrySettings(BaseServiceSettings):
    @property
    def dequantized_dir(self) -> Path:
        return self.dequantized_cache or self.data_dir / "models" / "dequantized"

    models_file: Path = setting(
        DEFAULT_MODELS_FILE, "INKWELL_MODELS_FILE", "point it at the registry file, libs/config/models.toml"
    )
    model_cache: Path | None = setting(
        None, "INKWELL_MODEL_CACHE", "a writable directory for model files (default: the Hugging Face cache)"
    )
    hf_endpoint: str = setting(
        "https://huggingface.co", "HF_ENDPOINT", "the Hugging Face Hub URL", pattern=r"^https?://[^\s]+$"
    )
    hf_token: SecretStr = setting(SecretStr(""), "HF_TOKEN", "a Hugging Face access token (hf_...)")
    hf_offline: bool = setting(False, "HF_HUB_OFFLINE", "1 to never contact the hub, 0 otherwise")
    hub_timeout_s: float = setting(5.0, "INKWELL_HUB_TIMEOUT_S", "seconds between 0.5 and 60", ge=0.5, le=60)
    model_auto_download: bool = setting(
        True, "INKWELL_MODEL_AUTO_DOWNLOAD", "true to download missing models in the background, false to wait"
    )
    model_retry_after_s: float = setting(
        600.0, "INKWELL_MODEL_RETRY_AFTER_S", "seconds before an out-of-memory model is tried again", ge=0
    )
    model_idle_unload_s: float = setting(
        900.0, "INKWELL_MODEL_IDLE_UNLOAD_S", "seconds a model may sit unused before it is unloaded", ge=1
    )
    torch_threads: int | None = setting(
        None, "INKWELL_TORCH_THREADS", "CPU threads for model inference, 1 to 64 (default: torch's choice)", ge=1, le=64
    )
    use_packaged_models: bool = setting(
        True,
        "INKWELL_PACKAGED_MODELS",
        "true to use models shipped in installed Python packages (offline), false to ignore them",
    )
    dequantized_cache: Path | None = setting(
        None,
        "INKWELL_DEQUANTIZED_CACHE",
        "a writable directory for GGUF models converted to safetensors (default: INKWELL_DATA_DIR/models/dequantized)",
    )
    download_workers: int = setting(2, "INKWELL_DOWNLOAD_WORKERS", "parallel model downloads, 1 to 8", ge=1, le=8)
