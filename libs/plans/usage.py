"""Usage per limit key, computed from usage records, and which limits a user has reached.

Each record counts against `ai_text_generation_calls` (every successful model call), against its
own provider's `<provider>_calls` and `<provider>_tokens` keys (PROVIDER_KEYS; the Hugging Face
router is metered as `mistral_*`, as the frontend maps it), and its price against `monthly_cost`.
Failed calls are not billed. Keys nothing in this system calls (tavily, video, ...) stay at 0
because no record names them, not because a constant is shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from libs.plans.config import LIMIT_KEYS, Plans, PlanSpec

# provider -> (calls key, tokens key). A provider not listed (e.g. "local") only counts against
# ai_text_generation_calls and monthly_cost.
PROVIDER_KEYS: dict[str, tuple[str, str | None]] = {
    "gemini": ("gemini_calls", "gemini_tokens"),
    "openai": ("openai_calls", "openai_tokens"),
    "anthropic": ("anthropic_calls", "anthropic_tokens"),
    "mistral": ("mistral_calls", "mistral_tokens"),
    "huggingface": ("mistral_calls", "mistral_tokens"),
    "tavily": ("tavily_calls", None),
    "serper": ("serper_calls", None),
    "metaphor": ("metaphor_calls", None),
    "exa": ("exa_calls", None),
    "firecrawl": ("firecrawl_calls", None),
    "stability": ("stability_calls", None),
    "video": ("video_calls", None),
    "image_edit": ("image_edit_calls", None),
    "audio": ("audio_calls", None),
    "wavespeed": ("wavespeed_calls", None),
}
AI_TEXT_PROVIDERS = frozenset({"gemini", "openai", "anthropic", "mistral", "huggingface", "local"})


def limit_keys_for(provider: str) -> tuple[str, ...]:
    """The limit keys one call to `provider` counts against (monthly_cost always)."""
    keys: list[str] = []
    if provider in AI_TEXT_PROVIDERS:
        keys.append("ai_text_generation_calls")
    calls, tokens = PROVIDER_KEYS.get(provider, (None, None))
    keys += [k for k in (calls, tokens) if k]
    keys.append("monthly_cost")
    return tuple(keys)


def usage_by_key(rows: Iterable[Mapping[str, Any]], plans: Plans) -> dict[str, float]:
    """All 20 limit keys' usage for the successful rows given (already filtered to one period)."""
    used = dict.fromkeys(LIMIT_KEYS, 0.0)
    for row in rows:
        if row["outcome"] != "ok":
            continue
        provider = row["provider"]
        calls = float(row["calls"])
        tokens = float(row["prompt_tokens"] + row["completion_tokens"])
        if provider in AI_TEXT_PROVIDERS:
            used["ai_text_generation_calls"] += calls
        calls_key, tokens_key = PROVIDER_KEYS.get(provider, (None, None))
        if calls_key:
            used[calls_key] += calls
        if tokens_key:
            used[tokens_key] += tokens
        used["monthly_cost"] += plans.cost(provider, row["prompt_tokens"], row["completion_tokens"])
    used["monthly_cost"] = round(used["monthly_cost"], 6)
    return used


def percentages(plan: PlanSpec, used: Mapping[str, float]) -> dict[str, float]:
    """Percent of each metered limit (limit > 0) used; `monthly_cost` is named `cost`, as the frontend reads."""
    out = {}
    for key in LIMIT_KEYS:
        limit = plan.limits.get(key, 0.0)
        if limit > 0:
            out["cost" if key == "monthly_cost" else key] = round(100 * used.get(key, 0.0) / limit, 2)
    return out


@dataclass(frozen=True)
class Exceeded:
    key: str
    used: float
    limit: float


def over_limits(plan: PlanSpec, used: Mapping[str, float], keys: Iterable[str] | None = None) -> list[Exceeded]:
    """The metered limits among `keys` (default: all) whose usage has reached the limit."""
    found = []
    for key in keys if keys is not None else LIMIT_KEYS:
        limit = plan.limits.get(key, 0.0)
        if limit > 0 and used.get(key, 0.0) >= limit:
            found.append(Exceeded(key, used.get(key, 0.0), limit))
    return found
