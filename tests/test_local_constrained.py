"""Grammar-constrained decoding with the tiny random Qwen2 (noise weights): every output validates,
for every schema of a set covering the keywords the grammar enforces, over many seeds and two
token budgets (a tight one forces the finisher to close the document)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from libs.model_registry.catalog import load_catalog
from libs.model_registry.loaders import CausalLM, load_causal_lm
from services.llm.grammar import FINISH_MARGIN, GrammarBackend, GrammarUnsupported
from services.llm.local import generate_text
from services.llm.structured import OutputInvalid, compile_schema, parse_constrained

SEEDS = range(12)
TASK = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 2, "maxLength": 40},
        "minutes": {"type": "integer", "minimum": 5, "maximum": 240},
        "done": {"type": "boolean"},
    },
    "required": ["name", "minutes"],
    "additionalProperties": False,
}
SCHEMAS: dict[str, dict[str, Any]] = {
    "object": TASK,
    "array_min_max_items": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 4},
    "enum": {
        "type": "object",
        "properties": {"priority": {"enum": ["high", "medium", "low"]}},
        "required": ["priority"],
    },
    "nested_required": {
        "type": "object",
        "properties": {
            "day": {
                "type": "object",
                "properties": {
                    "date": {"type": "string", "minLength": 10, "maxLength": 10},
                    "tasks": {"type": "array", "items": TASK, "minItems": 1, "maxItems": 3},
                },
                "required": ["date", "tasks"],
                "additionalProperties": False,
            }
        },
        "required": ["day"],
        "additionalProperties": False,
    },
    "integer_bounds": {"type": "integer", "minimum": -7, "maximum": 1234},
    "string_length": {"type": "string", "minLength": 5, "maxLength": 9},
    "number_and_null": {"type": "object", "properties": {"score": {"type": ["number", "null"]}}, "required": ["score"]},
}


def plan_schema() -> dict[str, Any]:
    from gateway.workflow.pillars import DEFAULT_PILLARS
    from gateway.workflow.planner import PER_PILLAR_MAX
    from gateway.workflow.planner import plan_schema as build

    return build(DEFAULT_PILLARS, PER_PILLAR_MAX)


@pytest.fixture(scope="module")
def tiny(tiny_qwen: Path) -> tuple[CausalLM, GrammarBackend]:
    lm = load_causal_lm(load_catalog().model("qwen2.5-0.5b-instruct"), tiny_qwen)
    return lm, GrammarBackend(lm.tokenizer, int(lm.model.config.vocab_size))


@pytest.mark.parametrize("name", [*SCHEMAS, "plan"])
def test_every_noise_output_validates(tiny: tuple[CausalLM, GrammarBackend], name: str) -> None:
    import torch

    lm, backend = tiny
    schema = plan_schema() if name == "plan" else SCHEMAS[name]
    _, validator = compile_schema(__import__("json").dumps(schema))
    compiled = backend.compile(schema)
    tight = compiled.finish_tokens + FINISH_MARGIN + 8
    failures = []
    for seed in SEEDS:
        for budget in (tight, tight + 200):
            torch.manual_seed(seed)
            processor = backend.processor(compiled, budget)
            result = generate_text(lm, [{"role": "user", "content": "plan"}], budget, 1.0, 60, processor)
            assert result.completion_tokens <= budget
            try:
                parse_constrained(result.text, validator)
            except OutputInvalid as invalid:
                failures.append((seed, budget, str(invalid), result.text[:200]))
    assert failures == []


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
        {"type": "object", "properties": {"a": {"type": "string", "not": {"const": "x"}}}},
        {"type": "integer", "multipleOf": 7},
    ],
)
def test_schemas_the_grammar_cannot_enforce_are_refused_by_name(
    tiny: tuple[CausalLM, GrammarBackend], schema: dict[str, Any]
) -> None:
    _, backend = tiny
    with pytest.raises(GrammarUnsupported) as caught:
        backend.compile(schema)
    assert "cannot enforce" in str(caught.value)
