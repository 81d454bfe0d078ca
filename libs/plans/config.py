"""Reading libs/config/plans.toml: plans, their 20 limits, user assignments and per-provider prices.

A limit of 0 means "no limit on this key" (the plan does not meter it), as in the old backend's
plan table; a positive number is enforced.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from libs.config import config_file
from libs.runtime.settings import ConfigError

DEFAULT_PLANS_FILE = config_file("plans.toml")
LIMIT_KEYS = (
    "ai_text_generation_calls",
    "gemini_calls",
    "openai_calls",
    "anthropic_calls",
    "mistral_calls",
    "tavily_calls",
    "serper_calls",
    "metaphor_calls",
    "exa_calls",
    "firecrawl_calls",
    "stability_calls",
    "video_calls",
    "image_edit_calls",
    "audio_calls",
    "wavespeed_calls",
    "gemini_tokens",
    "openai_tokens",
    "anthropic_tokens",
    "mistral_tokens",
    "monthly_cost",
)
TIERS = ("free", "basic", "pro", "enterprise")


@dataclass(frozen=True)
class PlanSpec:
    key: str
    name: str
    tier: str
    features: list[str]
    limits: dict[str, float]


@dataclass(frozen=True)
class Plans:
    default_plan: str
    plans: dict[str, PlanSpec]
    assignments: dict[str, str]
    pricing: dict[str, tuple[float, float]]

    def for_user(self, user_id: str) -> PlanSpec:
        return self.plans[self.assignments.get(user_id, self.default_plan)]

    def cost(self, provider: str, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for the tokens; a provider without a [pricing] entry costs nothing (local models)."""
        rate_in, rate_out = self.pricing.get(provider, (0.0, 0.0))
        return (prompt_tokens * rate_in + completion_tokens * rate_out) / 1_000_000


def load_plans(path: Path | None = None) -> Plans:
    """Parse and check the plans file; a mistake is a ConfigError naming INKWELL_PLANS_FILE."""
    path = path or DEFAULT_PLANS_FILE
    where = f"INKWELL_PLANS_FILE ({path})"
    try:
        raw = tomllib.loads(path.read_text())
        plans = {}
        for key, spec in raw["plans"].items():
            if spec["tier"] not in TIERS:
                raise ValueError(f"plans.{key}.tier must be one of {TIERS}")
            given = spec.get("limits", {})
            unknown = set(given) - set(LIMIT_KEYS)
            if unknown:
                raise ValueError(f"plans.{key}.limits has unknown keys {sorted(unknown)}")
            limits = {name: float(given.get(name, 0)) for name in LIMIT_KEYS}
            negative = sorted(name for name, value in limits.items() if value < 0)
            if negative:
                raise ValueError(f"plans.{key}.limits {negative} must be 0 (no limit) or positive")
            plans[key] = PlanSpec(key, str(spec["name"]), spec["tier"], list(spec.get("features", [])), limits)
        default = raw["default_plan"]
        assignments = {str(u): str(p) for u, p in raw.get("assignments", {}).items()}
        for plan in (default, *assignments.values()):
            if plan not in plans:
                raise ValueError(f"plan {plan!r} is not defined under [plans]")
        pricing = {
            name: (float(p.get("input", 0)), float(p.get("output", 0))) for name, p in raw.get("pricing", {}).items()
        }
    except FileNotFoundError:
        raise ConfigError(
            [f"{where}: file not found. Fix: point INKWELL_PLANS_FILE at libs/config/plans.toml"]
        ) from None
    except (tomllib.TOMLDecodeError, KeyError, ValueError, TypeError) as exc:
        raise ConfigError([f"{where}: {exc}. Fix: correct the file"]) from None
    return Plans(default, plans, assignments, pricing)
