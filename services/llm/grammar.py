"""Grammar-constrained decoding for local models: JSON Schema -> xgrammar grammar -> a logits
processor for transformers' generate().

Why xgrammar: it compiles the whole schema (objects, arrays with min/maxItems, enums, const,
integer and number bounds, string length bounds, patterns, anyOf, $ref) into a pushdown
automaton with a precomputed token mask cache, so one decoding step costs a bitmask fill (tens of
microseconds) instead of a regex walk over the vocabulary; see bench/local for the measured
overhead and README "Constrained decoding" for the comparison.

Noise-safe termination: a grammar alone does not make a model stop. When the token budget left
is about what the shortest valid completion needs, the processor stops sampling and *finishes*
the document deterministically (close an open string, take the forced key, the shortest way out
of a number, ...), so the output is valid even from a random model or a model that rambles.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("inkwell.llm.grammar")

# Keywords that change which documents are valid but that the grammar does not enforce. A schema
# using them is sent down the prompted path (and validated), never labelled CONSTRAINED.
UNENFORCED = frozenset(
    {
        "not",
        "if",
        "then",
        "else",
        "dependentSchemas",
        "dependentRequired",
        "dependencies",
        "uniqueItems",
        "contains",
        "minContains",
        "maxContains",
        "propertyNames",
        "unevaluatedProperties",
        "unevaluatedItems",
        "multipleOf",
        "$dynamicRef",
        "patternProperties",
        "minProperties",
        "maxProperties",
        "allOf",
        "oneOf",
        "exclusiveMinimum",
        "exclusiveMaximum",
    }
)
CLOSERS = ('"', "}", "]")
SEPARATORS = (",", ":")
FINISH_MARGIN = 24  # tokens kept on top of the shortest valid document


class GrammarUnsupported(ValueError):
    """The schema uses something the grammar cannot enforce; the message names it."""


def unenforced_keywords(schema: Any, path: str = "") -> list[str]:
    """Where the schema uses keywords the grammar would silently ignore (JSON pointer + keyword)."""
    found: list[str] = []
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
                for name, sub in value.items():
                    found += unenforced_keywords(sub, f"{path}/{key}/{name}")
                continue
            if key in ("enum", "const", "required", "default", "examples", "description", "title"):
                continue
            if key in UNENFORCED:
                found.append(f"{path or '/'}:{key}")
            found += unenforced_keywords(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for index, item in enumerate(schema):
            found += unenforced_keywords(item, f"{path}/{index}")
    return found


@dataclass(frozen=True)
class CompiledSchema:
    grammar: Any  # xgrammar.CompiledGrammar
    finish_tokens: int  # tokens the deterministic finisher needs for the shortest document


class GrammarBackend:
    """One per loaded model: its tokenizer's vocabulary as xgrammar sees it and a compiler whose
    cache keeps each distinct schema compiled once."""

    def __init__(self, tokenizer: Any, vocab_size: int) -> None:
        import xgrammar as xgr

        self._xgr = xgr
        stop = [t for t in _stop_ids(tokenizer) if t < vocab_size]
        self.info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=stop)
        self.compiler = xgr.GrammarCompiler(self.info, max_threads=1, cache_enabled=True)
        self.vocab_size = vocab_size
        special = set(self.info.special_token_ids)
        self._texts: list[bytes] = [b"" if i in special else bytes(t) for i, t in enumerate(self.info.decoded_vocab)]
        self._closers = {
            text: [i for i, t in enumerate(self._texts) if t == text.encode()] for text in CLOSERS + SEPARATORS
        }
        self._lock = threading.Lock()
        self._compiled: dict[str, CompiledSchema] = {}

    def compile(self, schema: dict[str, Any]) -> CompiledSchema:
        """The schema's grammar, or GrammarUnsupported saying why not."""
        key = json.dumps(schema)  # property order matters: the grammar writes keys in schema order
        with self._lock:
            found = self._compiled.get(key)
        if found is not None:
            return found
        unenforced = unenforced_keywords(schema)
        if unenforced:
            raise GrammarUnsupported("the grammar cannot enforce " + ", ".join(unenforced[:5]))
        try:
            grammar = self.compiler.compile_json_schema(key, any_whitespace=False, strict_mode=True)
        except Exception as exc:  # xgrammar raises RuntimeError/ValueError with its parser's message
            raise GrammarUnsupported(f"the grammar compiler refused the schema: {str(exc)[:200]}") from None
        finish = self._finish_length(grammar)
        compiled = CompiledSchema(grammar, finish)
        with self._lock:
            self._compiled[key] = compiled
        return compiled

    def processor(
        self, compiled: CompiledSchema, max_new_tokens: int, deadline: float | None = None
    ) -> ConstrainedLogits:
        return ConstrainedLogits(self, compiled, max_new_tokens, deadline)

    # --- the deterministic finisher -------------------------------------------------------------

    def finish_choice(self, matcher: Any, bitmask: Any) -> int:
        """The token that leads fastest to a complete document from the matcher's state."""
        allowed = _allowed_ids(bitmask, self.vocab_size)
        if not allowed:
            return -1
        allowed_set = set(allowed)
        stops = [t for t in self.info.stop_token_ids if t in allowed_set]
        if stops:
            return int(stops[0])
        for text in CLOSERS:
            for token in self._closers[text]:
                if token in allowed_set:
                    return token
        forced = matcher.find_jump_forward_string().encode()
        if forced:
            best, best_len = -1, 0
            for token in allowed:
                piece = self._texts[token]
                if piece and forced.startswith(piece) and len(piece) > best_len:
                    best, best_len = token, len(piece)
            if best >= 0:
                return best
        for text in SEPARATORS:  # on to the next item or key rather than a longer value
            for token in self._closers[text]:
                if token in allowed_set:
                    return token
        # No forced text: the longest allowed token gets past length minimums and enum values fastest.
        return max(allowed, key=lambda t: (len(self._texts[t]), -t))

    def _finish_length(self, grammar: Any) -> int:
        """Tokens the finisher needs from an empty document: the reserve kept for finishing."""
        matcher = self._xgr.GrammarMatcher(grammar)
        bitmask = self._xgr.allocate_token_bitmask(1, self.vocab_size)
        steps = 0
        while not matcher.is_terminated() and steps < 4096:
            matcher.fill_next_token_bitmask(bitmask, 0)
            token = self.finish_choice(matcher, bitmask[0])
            if token < 0 or not matcher.accept_token(token):
                break
            steps += 1
        if not matcher.is_terminated():
            raise GrammarUnsupported("the grammar has no finite completion the finisher can reach")
        return steps


class ConstrainedLogits:
    """A transformers LogitsProcessor: mask every token the grammar forbids; near the token
    budget or the deadline (time.monotonic()), force the finisher's choice. One instance per
    generate() call (batch size 1)."""

    def __init__(
        self, backend: GrammarBackend, compiled: CompiledSchema, max_new_tokens: int, deadline: float | None = None
    ) -> None:
        xgr = backend._xgr
        self.backend = backend
        self.matcher = xgr.GrammarMatcher(compiled.grammar)
        self.bitmask = xgr.allocate_token_bitmask(1, backend.vocab_size)
        self.budget = max_new_tokens
        self.reserve = compiled.finish_tokens + FINISH_MARGIN
        self.generated = 0
        self.finishing = False
        self.deadline = deadline
        self._first_step_at: float | None = None
        self._prompt_len: int | None = None

    @property
    def stop_ids(self) -> list[int]:
        return [int(t) for t in self.backend.info.stop_token_ids]

    @property
    def terminated(self) -> bool:
        return bool(self.matcher.is_terminated())

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self._prompt_len is None:
            self._prompt_len = int(input_ids.shape[1])
        else:
            token = int(input_ids[0, -1])
            if not self.matcher.is_terminated() and not self.matcher.accept_token(token):
                raise RuntimeError("the sampled token was not allowed by the grammar")  # a defect: masks forbid it
            self.generated += 1
        if self.matcher.is_terminated():
            forced = torch.full_like(scores, float("-inf"))
            forced[:, self.backend.info.stop_token_ids[0]] = 0.0
            return forced
        self.matcher.fill_next_token_bitmask(self.bitmask, 0)
        if not self.finishing and (self.budget - self.generated <= self.reserve or self._late()):
            self.finishing = True
        if self.finishing:
            choice = self.backend.finish_choice(self.matcher, self.bitmask[0])
            forced = torch.full_like(scores, float("-inf"))
            forced[:, choice] = 0.0
            return forced
        width = scores.shape[-1]
        if width > self.backend.vocab_size:  # padded embedding rows are never valid tokens
            scores[:, self.backend.vocab_size :] = float("-inf")
            scores = scores.contiguous()
        self.backend._xgr.apply_token_bitmask_inplace(scores[:, : self.backend.vocab_size], self.bitmask)
        return scores

    def _late(self) -> bool:
        """Would finishing at the pace so far overrun the deadline? Paced from the first decoding
        step (the prompt's prefill is not a decoding step); judged once a few steps are measured."""
        if self.deadline is None:
            return False
        now = time.monotonic()
        if self._first_step_at is None:
            self._first_step_at = now
        if self.generated < 3:
            return now >= self.deadline
        per_token = (now - self._first_step_at) / self.generated
        return now + per_token * (self.reserve + 2) >= self.deadline


def _stop_ids(tokenizer: Any) -> list[int]:
    ids = tokenizer.eos_token_id
    found = list(ids) if isinstance(ids, (list, tuple)) else ([ids] if ids is not None else [])
    for name in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>"):
        token = tokenizer.convert_tokens_to_ids(name) if name in tokenizer.get_vocab() else None
        if token is not None and token not in found:
            found.append(token)
    return [int(t) for t in found]


def _allowed_ids(row: Any, vocab_size: int) -> list[int]:
    """Token ids set in one row of xgrammar's packed int32 bitmask."""
    import numpy as np

    words = row.numpy().view(np.uint32)
    bits = np.unpackbits(words.view(np.uint8), bitorder="little")[:vocab_size]
    return [int(i) for i in np.flatnonzero(bits)]


def schema_supported(backend: GrammarBackend, schemas: Iterable[dict[str, Any]]) -> dict[str, str]:
    """For the bench: which schemas compile, and the reason for those that do not."""
    out: dict[str, str] = {}
    for schema in schemas:
        key = json.dumps(schema, sort_keys=True)[:60]
        try:
            backend.compile(schema)
            out[key] = "ok"
        except GrammarUnsupported as exc:
            out[key] = str(exc)
    return out
