"""Local generation with the registry's model for a role (chat template, prompt truncated to the
model's context, a time limit from the call's deadline). One generation at a time per process."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from libs.model_registry.loaders import CausalLM
from libs.model_registry.registry import ModelRegistry
from services.llm.routes import ChatResult


@dataclass
class LocalResult:
    model: str
    result: ChatResult


class LocalGenerator:
    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self._lock = asyncio.Lock()

    async def generate(
        self, role: str, messages: list[dict[str, str]], max_tokens: int, temperature: float, timeout_s: float
    ) -> LocalResult:
        loaded = await self.registry.loader.acquire(role)  # NoModelAvailable says why per candidate
        lm: CausalLM = loaded.handle
        async with self._lock:
            result = await asyncio.to_thread(_generate, lm, messages, max_tokens, temperature, timeout_s)
        return LocalResult(loaded.name, result)


def _generate(
    lm: CausalLM, messages: list[dict[str, str]], max_tokens: int, temperature: float, timeout_s: float
) -> ChatResult:
    import torch

    tokenizer, model = lm.tokenizer, lm.model
    budget = max(16, lm.context_length - max_tokens)
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    input_ids = ids["input_ids"]
    if input_ids.shape[1] > budget:  # keep the end of the conversation: the request is last
        input_ids = input_ids[:, -budget:]
    attention = torch.ones_like(input_ids)
    sampling = temperature > 0
    with torch.inference_mode():
        output = model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            max_new_tokens=max_tokens,
            do_sample=sampling,
            temperature=temperature if sampling else None,
            top_p=None,
            top_k=None,
            max_time=max(0.1, timeout_s),
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        )
    new_tokens = output[0, input_ids.shape[1] :]
    text = tokenizer.decode(new_tokens, skip_special_tokens=True)
    return ChatResult(
        text=text,
        served_model=lm.entry.spec.repo_id,
        served_by="local",
        prompt_tokens=int(input_ids.shape[1]),
        completion_tokens=int(new_tokens.shape[0]),
    )
