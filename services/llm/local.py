"""Local generation with the registry's model for a role (chat template, prompt truncated to the
model's context, a time limit from the call's deadline). One generation at a time per process.

With a JSON Schema the grammar (services/llm/grammar.py) constrains decoding, so the output is
valid by construction; a schema the grammar cannot enforce is generated unconstrained and the
result says why (`grammar_note`), for the router to take the prompted path and label it."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any

from libs.model_registry.loaders import CausalLM
from libs.model_registry.loading import LoadedModel
from libs.model_registry.registry import ModelRegistry
from services.llm.grammar import GrammarBackend, GrammarUnsupported
from services.llm.routes import ChatResult


@dataclass
class LocalResult:
    model: str
    result: ChatResult
    constrained: bool = False
    grammar_note: str = ""  # why the output was not constrained, when a schema was given
    finished: bool = True  # constrained: the grammar reached a complete document


class LocalGenerator:
    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self._lock = asyncio.Lock()
        self._backends: dict[int, GrammarBackend] = {}
        self._backend_lock = threading.Lock()

    async def acquire(self, role: str, timeout_s: float) -> LoadedModel:
        """The role's model; a load in progress is awaited only while the caller's deadline allows
        (asyncio.TimeoutError otherwise; the load itself goes on in the background)."""
        load = asyncio.ensure_future(self.registry.loader.acquire(role))
        return await asyncio.wait_for(asyncio.shield(load), timeout=max(0.01, timeout_s))

    async def generate(
        self,
        role: str,
        messages: list[dict[str, str]],
        max_tokens: int,
        temperature: float,
        timeout_s: float,
        schema: dict[str, Any] | None = None,
        loaded: LoadedModel | None = None,
    ) -> LocalResult:
        started = time.monotonic()
        loaded = loaded or await self.registry.loader.acquire(role)  # NoModelAvailable says why
        lm: CausalLM = loaded.handle
        async with self._lock:
            left = timeout_s - (time.monotonic() - started)
            return await asyncio.to_thread(self._run, loaded.name, lm, messages, max_tokens, temperature, left, schema)

    def backend(self, lm: CausalLM) -> GrammarBackend:
        """The model's grammar backend, built once per loaded model (its vocabulary, ~1 s)."""
        with self._backend_lock:
            found = self._backends.get(id(lm.model))
            if found is None:
                found = GrammarBackend(lm.tokenizer, int(lm.model.config.vocab_size))
                self._backends = {id(lm.model): found}  # one loaded model per role; drop stale ones
            return found

    def _run(
        self,
        name: str,
        lm: CausalLM,
        messages: list[dict[str, str]],
        max_tokens: int,
        temperature: float,
        timeout_s: float,
        schema: dict[str, Any] | None,
    ) -> LocalResult:
        processor = None
        note = ""
        if schema is not None:
            try:
                compiled = self.backend(lm).compile(schema)
                if max_tokens < compiled.finish_tokens + 2:
                    raise GrammarUnsupported(
                        f"max_tokens {max_tokens} is below the {compiled.finish_tokens} tokens "
                        "the shortest valid document takes"
                    )
                processor = self.backend(lm).processor(compiled, max_tokens, time.monotonic() + timeout_s)
            except GrammarUnsupported as exc:
                note = str(exc)
        result = generate_text(lm, messages, max_tokens, temperature, timeout_s, processor)
        finished = processor.terminated if processor is not None else True
        return LocalResult(name, result, processor is not None, note, finished)


def generate_text(
    lm: CausalLM,
    messages: list[dict[str, str]],
    max_tokens: int,
    temperature: float,
    timeout_s: float,
    processor: Any = None,
) -> ChatResult:
    """One generate() call; `processor` (a ConstrainedLogits) constrains it when given."""
    import torch
    from transformers import LogitsProcessorList

    tokenizer, model = lm.tokenizer, lm.model
    budget = max(16, lm.context_length - max_tokens)
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    input_ids = ids["input_ids"]
    if input_ids.shape[1] > budget:  # keep the end of the conversation: the request is last
        input_ids = input_ids[:, -budget:]
    attention = torch.ones_like(input_ids)
    sampling = temperature > 0
    # The grammar's finisher closes the document before the deadline; max_time stays as the hard
    # stop, a little later, so a constrained answer is not cut mid-finish.
    hard_stop = timeout_s * 1.1 + 0.5 if processor is not None else timeout_s
    with torch.inference_mode():
        output = model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            max_new_tokens=max_tokens,
            do_sample=sampling,
            temperature=temperature if sampling else None,
            top_p=None,
            top_k=None,
            max_time=max(0.1, hard_stop),
            logits_processor=LogitsProcessorList([processor]) if processor is not None else None,
            eos_token_id=getattr(processor, "stop_ids", None),
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
