"""Loading functions for the registry's tasks. Imports of torch/transformers happen here, inside
the call, so a service can listen before paying for them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from libs.model_registry.catalog import ModelEntry


@dataclass
class CausalLM:
    """A chat model and its tokenizer, with the prompt budget of its context window."""

    entry: ModelEntry
    model: Any
    tokenizer: Any
    source: str = ""  # "snapshot", "gguf" (converted now) or "cache" (converted earlier)

    @property
    def context_length(self) -> int:
        return self.entry.spec.context_length


@dataclass
class SentenceEncoder:
    """Mean-pooled, normalized sentence embeddings from a transformer encoder."""

    entry: ModelEntry
    model: Any
    tokenizer: Any

    def encode(self, texts: list[str]) -> Any:
        import torch

        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.entry.spec.context_length, return_tensors="pt"
        )
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)


def quiet_transformers() -> None:
    """No progress bars or advisory chatter on stderr: logs are JSON lines."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()


def set_torch_threads(count: int | None) -> None:
    if count:
        import torch

        torch.set_num_threads(count)


def _dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def load_causal_lm(entry: ModelEntry, path: Path, dequantized_dir: Path | None = None) -> CausalLM:
    """A snapshot directory, or a .gguf file (dequantized once, then loaded from the cache)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    if path.suffix == ".gguf":
        from libs.model_registry.gguf import load_gguf

        cache_root = dequantized_dir or path.parent / "dequantized"
        model, tokenizer, source = load_gguf(path, cache_root, _dtype(entry.spec.dtype))
        model.eval()
        return CausalLM(entry, model, tokenizer, source)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=_dtype(entry.spec.dtype), local_files_only=True)
    model.eval()
    return CausalLM(entry, model, tokenizer, "snapshot")


def load_sentence_encoder(entry: ModelEntry, path: Path) -> SentenceEncoder:
    from transformers import AutoModel, AutoTokenizer

    quiet_transformers()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, dtype=_dtype(entry.spec.dtype), local_files_only=True)
    model.eval()
    return SentenceEncoder(entry, model, tokenizer)
