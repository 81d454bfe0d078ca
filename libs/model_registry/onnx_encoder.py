"""Export a sentence encoder to ONNX with dynamic int8 weights, once, into a cache.

Encoding is almost all of the index service's cost; ONNX Runtime with int8 weights encodes
all-MiniLM-L6-v2 several times faster than fp32 PyTorch on CPU while keeping retrieval quality
(tests/test_encoder_quality.py, bench/index). The export takes seconds, so it runs once per
source model and toolchain: the cache key hashes the model files and the exporter's versions,
and a finished export is moved into place atomically (a crash leaves no half-written model).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger("inkwell.models.onnx")

# Bump when the export or quantization recipe changes: old exports are then ignored.
RECIPE = "bert-last-hidden-state/opset17/int8-matmul-per-channel/v1"
MODEL_FILE = "model.onnx"
_SOURCE_FILES = ("config.json", "model.safetensors", "tokenizer.json")
_TOOLS = ("torch", "transformers", "onnx", "onnxruntime")


def cache_key(source: Path) -> str:
    """A hash of the source model's files, the recipe and the exporting libraries' versions."""
    digest = hashlib.sha256(RECIPE.encode())
    for name in _SOURCE_FILES:
        digest.update(name.encode())
        with (source / name).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    for tool in _TOOLS:
        digest.update(f"{tool}={metadata.version(tool)}".encode())
    return digest.hexdigest()[:32]


def int8_encoder(source: Path, cache_root: Path) -> Path:
    """The int8 ONNX export of `source` (a transformers BERT-style encoder with tokenizer.json),
    made on first use. Returns the model file; tokenizer.json sits next to it (where txtai's
    ONNX vectors look for it)."""
    target = cache_root / cache_key(source)
    model = target / MODEL_FILE
    if model.exists():
        return model
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=cache_root))
    try:
        log.info("exporting the embeddings model to int8 ONNX (once)", extra={"cache": str(target)})
        _export_fp32(source, staging / "fp32.onnx")
        _quantize(staging / "fp32.onnx", staging / MODEL_FILE)
        (staging / "fp32.onnx").unlink()
        shutil.copyfile(source / "tokenizer.json", staging / "tokenizer.json")
        (staging / "export.json").write_text(json.dumps({"source": str(source), "recipe": RECIPE}))
        for file in staging.iterdir():
            with file.open("rb") as handle:
                os.fsync(handle.fileno())
        try:
            staging.rename(target)
        except OSError:
            if not model.exists():  # not another process finishing first: a real failure
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return model


def _export_fp32(source: Path, out: Path) -> None:
    import torch
    from transformers import AutoModel

    from libs.model_registry.loaders import quiet_transformers

    quiet_transformers()
    base = AutoModel.from_pretrained(str(source), attn_implementation="eager", local_files_only=True).eval()

    class LastHiddenState(torch.nn.Module):
        """Keyword arguments for the model, one tensor out: what txtai's ONNX vectors mean-pool."""

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = torch.ones(2, 8, dtype=torch.long)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer advisories about the mask branch: verified by the quality gate
        torch.onnx.export(
            LastHiddenState(base),
            (example, torch.ones_like(example), torch.zeros_like(example)),
            str(out),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )


def _quantize(fp32: Path, out: Path) -> None:
    """Dynamic int8 weights on the MatMuls, one scale per output channel. The embedding table
    (Gather) stays fp32: quantizing it or using one scale per tensor cost retrieval quality."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    advisory = _DropAdvisory()  # onnxruntime's quantizer chats per tensor on the root logger
    logging.getLogger().addFilter(advisory)
    try:
        quantize_dynamic(
            str(fp32), str(out), op_types_to_quantize=["MatMul"], per_channel=True, weight_type=QuantType.QInt8
        )
    finally:
        logging.getLogger().removeFilter(advisory)


class _DropAdvisory(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        """Only real problems pass: not the per-tensor INFO lines, nor the static-quantization hint."""
        return record.levelno > logging.INFO and "pre-processing before quantization" not in record.getMessage()
